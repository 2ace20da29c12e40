"""The project event outbox: every change writes its event in its own transaction.

Readers follow the table by id (``events_after``), so live streams in any process see every
committed change once, in commit order, and a rolled-back change never shows up. The event is
the change's summary (kind, action, ids, who, through what), never its data.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from store.models import ProjectEvent, utcnow

KEEP = timedelta(days=2)  # events older than this are pruned; a client that slept longer reloads


def add_event(
    session: Session,
    *,
    project_id: int,
    kind: str,
    action: str,
    ids: Sequence[int] = (),
    version: int | None = None,
    actor: str = "",
    via: str = "",
    data: dict[str, Any] | None = None,
) -> ProjectEvent:
    """Stage an event in the session's transaction (flushes, never commits)."""
    event = ProjectEvent(
        project_id=project_id,
        kind=kind,
        action=action,
        ids=[int(i) for i in ids],
        version=version,
        actor=actor,
        via=via,
        data=data or {},
    )
    session.add(event)
    session.flush()
    return event


def events_after(
    session: Session, *, after_id: int, project_id: int | None = None, limit: int = 500
) -> list[ProjectEvent]:
    """Committed events with an id above ``after_id``, oldest first."""
    statement = select(ProjectEvent).where(col(ProjectEvent.id) > after_id)
    if project_id is not None:
        statement = statement.where(ProjectEvent.project_id == project_id)
    return list(session.exec(statement.order_by(col(ProjectEvent.id)).limit(limit)))


def latest_event_id(session: Session, *, project_id: int | None = None) -> int:
    """The newest event id (of one project, or of all); 0 when there is none."""
    statement = select(func.max(ProjectEvent.id))
    if project_id is not None:
        statement = statement.where(ProjectEvent.project_id == project_id)
    return int(session.exec(statement).one() or 0)


def prune_events(session: Session, *, older_than: timedelta = KEEP) -> int:
    """Delete events older than ``older_than``; returns how many. Commits."""
    result = session.exec(delete(ProjectEvent).where(col(ProjectEvent.created_at) < utcnow() - older_than))
    session.commit()
    return result.rowcount
