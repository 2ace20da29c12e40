"""Undo and redo (a bulk change is one step), and the change list; thin adapters over
:mod:`ops.history`. An annotator undoes its own newest change; a reviewer the project's newest."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from ops import history
from server.deps import CallerDep, EnvDep

router = APIRouter(prefix="/projects/{project_id}/history", tags=["history"])


def _done(verb: str, result: history.Reverted | None) -> dict[str, Any]:
    if result is None:
        return {verb: None}
    step = {
        "batch_id": result.batch_id,
        "reverted_batch_id": result.reverted_batch_id,
        "description": result.description,
        "affected": result.affected,
    }
    return {verb: step, "annotation_ids": result.annotation_ids, "own": result.own}


@router.get("")
def list_(
    project_id: int, env: EnvDep, caller: CallerDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[dict[str, Any]]:
    """The newest change batches: who changed what, through what, and whether it was undone."""
    return [b.model_dump(mode="json") for b in history.list_changes(env, caller, project_id, limit=limit)]


@router.post("/undo")
def undo_(project_id: int, env: EnvDep, caller: CallerDep) -> dict[str, Any]:
    """Revert the newest change (an annotator's: its own); 409 if a row it touched was edited since."""
    return _done("undo", history.step(env, caller, project_id, "undo"))


@router.post("/redo")
def redo_(project_id: int, env: EnvDep, caller: CallerDep) -> dict[str, Any]:
    """Re-apply the newest undone change (until a new change is made)."""
    return _done("redo", history.step(env, caller, project_id, "redo"))
