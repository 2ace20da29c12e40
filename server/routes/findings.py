"""Audit findings: the ranked review queue, and closing a finding with its resolution."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from server.deps import BusDep, Reviewer, SessionDep, Viewer, bad_input, not_found
from server.events import Event
from store.findings import close_finding, get_finding, list_findings

router = APIRouter(prefix="/projects/{project_id}/findings", tags=["findings"])


class FindingClose(BaseModel):
    resolution: str = Field(min_length=1, max_length=500, description="e.g. 'fixed', 'not a problem'.")


@router.get("")
def list_(
    access: Viewer,
    session: SessionDep,
    status: Literal["open", "closed"] | None = None,
    kind: str | None = None,
    image_id: int | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Open findings first, ranked by severity x confidence."""
    rows = list_findings(
        session,
        project_id=access.project_id,
        status=status,
        kind=kind,
        image_id=image_id,
        offset=offset,
        limit=limit,
    )
    return [f.model_dump(mode="json") for f in rows]


@router.post("/{finding_id}/close")
def close(
    finding_id: int, body: FindingClose, access: Reviewer, session: SessionDep, bus: BusDep
) -> dict[str, Any]:
    finding = get_finding(session, finding_id=finding_id)
    if finding is None or finding.project_id != access.project_id:
        raise not_found(f"finding {finding_id} in project {access.project_id}")
    with bad_input():
        closed = close_finding(session, finding_id=finding_id, resolution=body.resolution)
    assert closed is not None
    bus.publish(Event(access.project_id, "finding", "closed", [finding_id], actor=access.actor))
    return closed.model_dump(mode="json")
