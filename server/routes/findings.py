"""Audit findings: the ranked review queue, and closing a finding with its resolution; thin
adapters over :mod:`ops.findings`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ops import findings
from server.deps import CallerDep, EnvDep

router = APIRouter(prefix="/projects/{project_id}/findings", tags=["findings"])


class FindingClose(BaseModel):
    resolution: str = Field(min_length=1, max_length=500, description="e.g. 'fixed', 'not a problem'.")


@router.get("")
def list_(
    project_id: int,
    env: EnvDep,
    caller: CallerDep,
    status: Literal["open", "closed"] | None = None,
    kind: str | None = None,
    image_id: int | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Open findings first, ranked by severity x confidence."""
    rows = findings.list_(
        env, caller, project_id, status=status, kind=kind, image_id=image_id, offset=offset, limit=limit
    )
    return [f.model_dump(mode="json") for f in rows]


@router.post("/{finding_id}/close")
def close(
    project_id: int, finding_id: int, body: FindingClose, env: EnvDep, caller: CallerDep
) -> dict[str, Any]:
    """Close a finding with a free-text resolution (nothing else changes)."""
    return findings.close(env, caller, project_id, finding_id, resolution=body.resolution).model_dump(
        mode="json"
    )
