"""Undo and redo of the project's changes (a bulk change is one step), and the change list."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlmodel import Session, col, select

from server.deps import Access, BusDep, Reviewer, SessionDep, Viewer
from server.events import Event, EventBus
from store.history import HistoryResult, redo, undo
from store.models import AnnotationEvent, ChangeBatch

router = APIRouter(prefix="/projects/{project_id}/history", tags=["history"])


def _done(
    session: Session, bus: EventBus, access: Access, verb: str, result: HistoryResult | None
) -> dict[str, Any]:
    if result is None:
        return {verb: None}
    ids = sorted(
        set(
            session.exec(
                select(AnnotationEvent.annotation_id).where(AnnotationEvent.batch_id == result.batch_id)
            )
        )
    )
    bus.publish(Event(access.project_id, "annotation", verb, ids, actor=access.actor))
    return {verb: dataclasses.asdict(result), "annotation_ids": ids}


@router.get("")
def list_(
    access: Viewer, session: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[dict[str, Any]]:
    """The newest change batches: who changed what, and whether it was undone."""
    rows = session.exec(
        select(ChangeBatch)
        .where(ChangeBatch.project_id == access.project_id)
        .order_by(col(ChangeBatch.id).desc())
        .limit(limit)
    )
    return [b.model_dump(mode="json") for b in rows]


@router.post("/undo")
def undo_(access: Reviewer, session: SessionDep, bus: BusDep) -> dict[str, Any]:
    """Revert the project's newest change; 409 if a row it touched has been edited since."""
    return _done(
        session, bus, access, "undo", undo(session, project_id=access.project_id, actor=access.actor)
    )


@router.post("/redo")
def redo_(access: Reviewer, session: SessionDep, bus: BusDep) -> dict[str, Any]:
    """Re-apply the newest undone change (until a new change is made)."""
    return _done(
        session, bus, access, "redo", redo(session, project_id=access.project_id, actor=access.actor)
    )
