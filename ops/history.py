"""Undo and redo (a bulk change is one step), and the change list.

An annotator undoes its own newest change; a reviewer or admin the project's newest change,
whoever made it. Both are refused with who changed a row when someone edited it since.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select

from ops.caller import Caller
from ops.errors import Invalid
from ops.unit import Env, change, read
from store import history as repo
from store.models import AnnotationEvent, ChangeBatch


@dataclass(frozen=True)
class Reverted:
    verb: str  # undo | redo
    batch_id: int
    reverted_batch_id: int
    description: str
    affected: int
    annotation_ids: list[int]
    own: bool  # only the caller's own changes were considered


def step(env: Env, caller: Caller | None, project_id: int, verb: str) -> Reverted | None:
    """Undo or redo one change; None when there is nothing to do."""
    if verb not in ("undo", "redo"):
        raise Invalid(f"verb must be undo or redo, got {verb!r}")
    with change(env, caller, "history.undo_own", project_id) as unit:
        assert unit.access is not None
        own = not unit.access.allows("history.undo")
        act = repo.undo if verb == "undo" else repo.redo
        result = act(unit.session, project_id=project_id, actor=unit.caller.username, own=own)
        if result is None:
            return None
        ids = sorted(
            set(
                unit.session.exec(
                    select(AnnotationEvent.annotation_id).where(
                        AnnotationEvent.batch_id == result.batch_id,
                        col(AnnotationEvent.action).not_in(repo.CLASS_ACTIONS),
                    )
                )
            )
        )
        batch = unit.session.get(ChangeBatch, result.batch_id)
        if batch is not None:
            batch.via, batch.agent_run_id = unit.caller.via, unit.caller.agent_run_id
            unit.session.add(batch)
        unit.event("annotation", verb, ids)
        return Reverted(
            verb, result.batch_id, result.reverted_batch_id, result.description, result.affected, ids, own
        )


def list_changes(env: Env, caller: Caller | None, project_id: int, *, limit: int = 50) -> list[ChangeBatch]:
    """The newest change batches: who changed what, through what, and whether it was undone."""
    with read(env, caller, "history.read", project_id) as unit:
        return list(
            unit.session.exec(
                select(ChangeBatch)
                .where(ChangeBatch.project_id == project_id)
                .order_by(col(ChangeBatch.id).desc())
                .limit(limit)
            )
        )
