"""Audit findings: the ranked review queue, and closing a finding with its resolution; thin
adapters over :mod:`ops.findings`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ops import findings
from server.deps import CallerDep, EnvDep

router = APIRouter(prefix="/projects/{project_id}/findings", tags=["findings"])


class FindingResolve(BaseModel):
    action: findings.Action = Field(description="What to do with the finding's annotation.")
    label: str | None = Field(None, description="relabel: the class to move it to.")
    bbox: list[float] | None = Field(None, description="reshape: a new [x, y, w, h] box.")
    mask: dict[str, Any] | None = Field(None, description="reshape or add: a COCO RLE mask.")


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


@router.post("/{finding_id}/resolve")
def resolve(
    project_id: int, finding_id: int, body: FindingResolve, env: EnvDep, caller: CallerDep
) -> dict[str, Any]:
    """Act on the finding's annotation (accept, reject, delete, relabel, reshape, add the missing
    object, or dismiss) and close the finding, as one undoable change."""
    closed = findings.resolve(
        env, caller, project_id, finding_id, body.action, label=body.label, bbox=body.bbox, mask=body.mask
    )
    return closed.finding.model_dump(mode="json")
