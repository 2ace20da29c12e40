"""The annotation event log: change batches, before/after snapshots, undo and redo.

Every annotation write happens inside a ``ChangeBatch`` and appends one ``AnnotationEvent`` with
JSON snapshots of the row before and after. Events are never edited. Undo applies the inverse of
a batch's net effect as a new batch of kind ``undo``; redo inverts that undo batch as a batch of
kind ``redo``. Both check first that every row they touch still looks the way the batch left it,
so an undo can never clobber somebody's later edit: it raises ``StaleWriteError`` and writes
nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import exists
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from store.errors import StaleWriteError, StoreError
from store.models import Annotation, AnnotationEvent, AnnotationStatus, Category, ChangeBatch, utcnow

CLASS_ACTIONS = ("class_create", "class_delete")  # events about a class (annotation_id 0), not a row
_VOLATILE = ("version", "updated_at")  # bookkeeping, not content: ignored when comparing states
_DATETIMES = ("created_at", "updated_at")


@dataclass(frozen=True)
class HistoryResult:
    """What an undo or redo did: the new batch, the batch it acted on, and how many rows moved."""

    batch_id: int
    reverted_batch_id: int
    description: str
    affected: int


def begin_change(
    session: Session,
    *,
    project_id: int,
    actor: str,
    description: str,
    via: str = "",
    agent_run_id: int | None = None,
) -> ChangeBatch:
    """Open a change batch; pass it to every annotation write of this one user-visible change."""
    batch = ChangeBatch(
        project_id=project_id,
        actor=actor,
        description=description,
        kind="change",
        via=via,
        agent_run_id=agent_run_id,
    )
    session.add(batch)
    session.flush()
    return batch


def snapshot(annotation: Annotation) -> dict[str, Any]:
    """All columns of ``annotation`` as JSON values (datetimes as ISO strings, enums as values)."""
    out: dict[str, Any] = {}
    for column in Annotation.__table__.columns:  # type: ignore[attr-defined]
        value = getattr(annotation, column.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, Enum):
            value = value.value
        out[column.name] = value
    return json.loads(json.dumps(out))


def _fields(snap: dict[str, Any]) -> dict[str, Any]:
    fields = dict(snap)
    for name in _DATETIMES:
        fields[name] = datetime.fromisoformat(fields[name])
    fields["status"] = AnnotationStatus(fields["status"])
    return fields


def _content(snap: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if snap is None else {k: v for k, v in snap.items() if k not in _VOLATILE}


def record(
    session: Session,
    *,
    batch: ChangeBatch,
    annotation_id: int,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Append one event to ``batch`` (``action``: create, update or delete)."""
    session.add(
        AnnotationEvent(
            project_id=batch.project_id,
            batch_id=batch.id,  # type: ignore[arg-type]
            annotation_id=annotation_id,
            action=action,
            before=before,
            after=after,
            actor=batch.actor,
        )
    )


def record_class(session: Session, *, batch: ChangeBatch, category: Category, action: str) -> None:
    """A class that ``batch`` created or deleted (``action`` in :data:`CLASS_ACTIONS`), so undo can
    bring a deleted one back under its id: a rename moves the annotations to the new class and
    drops the emptied old one, and its undo must restore both."""
    if action not in CLASS_ACTIONS:
        raise ValueError(f"action must be one of {CLASS_ACTIONS}, got {action!r}")
    snap = {
        "id": category.id,
        "name": category.name,
        "color": category.color,
        "supercategory": category.supercategory,
    }
    record(
        session, batch=batch, annotation_id=0, action=action,
        before=snap if action == "class_delete" else None, after=snap if action == "class_create" else None,
    )  # fmt: skip


def _class_events(session: Session, batch_id: int) -> list[AnnotationEvent]:
    return list(
        session.exec(
            select(AnnotationEvent)
            .where(AnnotationEvent.batch_id == batch_id, col(AnnotationEvent.action).in_(CLASS_ACTIONS))
            .order_by(col(AnnotationEvent.id))
        )
    )


def _net_changes(session: Session, batch_id: int) -> dict[int, tuple[dict | None, dict | None]]:
    """Per annotation, its state before the batch's first event and after its last.

    Rows the batch created and deleted again have no net effect and are left out.
    """
    events = session.exec(
        select(AnnotationEvent)
        .where(AnnotationEvent.batch_id == batch_id, col(AnnotationEvent.action).not_in(CLASS_ACTIONS))
        .order_by(col(AnnotationEvent.id))
    )
    net: dict[int, tuple[dict | None, dict | None]] = {}
    for event in events:
        first_before = net[event.annotation_id][0] if event.annotation_id in net else event.before
        net[event.annotation_id] = (first_before, event.after)
    return {
        key: (before, after)
        for key, (before, after) in net.items()
        if before is not None or after is not None
    }


def last_actor(session: Session, annotation_id: int) -> str:
    event = session.exec(
        select(AnnotationEvent)
        .where(AnnotationEvent.annotation_id == annotation_id)
        .order_by(col(AnnotationEvent.id).desc())
    ).first()
    return event.actor if event else ""


def _invert(session: Session, *, source: ChangeBatch, new_batch: ChangeBatch, action: str) -> int:
    """Write into ``new_batch`` the inverse of ``source``'s net effect; return rows touched."""
    net = _net_changes(session, source.id)  # type: ignore[arg-type]
    classes = _class_events(session, source.id)  # type: ignore[arg-type]
    coming_back = {e.before["id"] for e in classes if e.action == "class_delete" and e.before}
    for annotation_id, (before, after) in net.items():
        current = session.get(Annotation, annotation_id)
        if _content(snapshot(current) if current else None) != _content(after):
            raise StaleWriteError(
                annotation_id=annotation_id,
                expected_version=after["version"] if after else None,
                actual_version=current.version if current else None,
                changed_by=last_actor(session, annotation_id),
                action=action,
            )
        if (
            before is not None
            and before["category_id"] not in coming_back
            and session.get(Category, before["category_id"]) is None
        ):
            raise StoreError(
                f"cannot {action} batch {source.id}: category {before['category_id']} of annotation "
                f"{annotation_id} was deleted; recreate the class first"
            )
    session.add(new_batch)
    session.flush()
    for event in reversed(classes):  # the classes it deleted come back before their annotations
        if (
            event.action == "class_delete"
            and event.before
            and session.get(Category, event.before["id"]) is None
        ):
            category = Category(project_id=source.project_id, **event.before)
            session.add(category)
            session.flush()
            record_class(session, batch=new_batch, category=category, action="class_create")
    now = utcnow()
    for annotation_id, (before, _after) in reversed(net.items()):
        current = session.get(Annotation, annotation_id)
        if before is None:
            assert current is not None  # checked above: the batch created it and it is still there
            record(
                session,
                batch=new_batch,
                annotation_id=annotation_id,
                action="delete",
                before=snapshot(current),
                after=None,
            )
            session.delete(current)
            continue
        fields = _fields(before)
        if current is None:
            restored = Annotation(**{**fields, "version": before["version"] + 1, "updated_at": now})
            session.add(restored)
            session.flush()
            record(
                session,
                batch=new_batch,
                annotation_id=annotation_id,
                action="create",
                before=None,
                after=snapshot(restored),
            )
            continue
        old = snapshot(current)
        for name, value in fields.items():
            if name not in ("id", "version", "updated_at"):
                setattr(current, name, value)
        current.version += 1
        current.updated_at = now
        session.add(current)
        session.flush()
        record(
            session,
            batch=new_batch,
            annotation_id=annotation_id,
            action="update",
            before=old,
            after=snapshot(current),
        )
    _drop_created(session, classes, new_batch)
    return len(net)


def _drop_created(session: Session, classes: list[AnnotationEvent], new_batch: ChangeBatch) -> None:
    """The classes a batch created, deleted again by its inverse once empty (a used one stays)."""
    from store.categories import delete_category  # store.categories writes through this module

    for event in reversed(classes):
        category = (
            session.get(Category, event.after["id"])
            if event.action == "class_create" and event.after
            else None
        )
        if category is None:
            continue
        used = session.exec(
            select(Annotation.id).where(Annotation.category_id == category.id).limit(1)
        ).first()
        if used is None:
            record_class(session, batch=new_batch, category=category, action="class_delete")
            delete_category(session, category_id=category.id)  # type: ignore[arg-type]


def _has_events() -> Any:
    # An opened batch that wrote nothing is not a change a person could want undone.
    return exists().where(AnnotationEvent.batch_id == ChangeBatch.id)


def _newest(session: Session, statement: Any) -> ChangeBatch | None:
    return session.exec(statement.order_by(col(ChangeBatch.id).desc()).limit(1)).first()


def _changes(project_id: int, actor: str, own: bool) -> list[Any]:
    """Conditions selecting the undo stack: the project's change batches, or only ``actor``'s."""
    conditions = [ChangeBatch.project_id == project_id, ChangeBatch.kind == "change", _has_events()]
    return conditions + [ChangeBatch.actor == actor] if own else conditions


def undo(
    session: Session, *, project_id: int, actor: str, own: bool = False, depth: int = 100
) -> HistoryResult | None:
    """Revert the newest change batch not undone yet, among the last ``depth`` ones.

    The stack is the project's (``own=False``) or only ``actor``'s batches (``own=True``: per-user
    undo in a shared project, where somebody else may have edited the same rows since; that is
    when the check bites). Returns None when there is nothing to undo. Flushes; the caller commits. Raises
    ``StaleWriteError`` (writing nothing) when a row the batch touched has been changed since.
    """
    stack = _changes(project_id, actor, own)
    horizon = session.exec(
        select(ChangeBatch.id).where(*stack).order_by(col(ChangeBatch.id).desc()).offset(depth - 1).limit(1)
    ).first()
    target = _newest(
        session,
        select(ChangeBatch).where(
            *stack, col(ChangeBatch.undone).is_(False), col(ChangeBatch.id) >= (horizon or 0)
        ),
    )
    if target is None:
        return None
    # After a redo, the rows look the way the redo batch left them: invert that one.
    redo_batch = _newest(
        session, select(ChangeBatch).where(ChangeBatch.kind == "redo", ChangeBatch.reverts_id == target.id)
    )
    new_batch = ChangeBatch(
        project_id=project_id,
        actor=actor,
        description=f"undo: {target.description}",
        kind="undo",
        reverts_id=target.id,
    )
    affected = _invert(session, source=redo_batch or target, new_batch=new_batch, action="undo")
    target.undone = True
    session.add(target)
    session.flush()
    return HistoryResult(new_batch.id, target.id, target.description, affected)  # type: ignore[arg-type]


def redo(session: Session, *, project_id: int, actor: str, own: bool = False) -> HistoryResult | None:
    """Re-apply the most recently undone batch (of the same stack as ``undo``).

    None when nothing is undone, or when a newer change batch exists since that undo (a new change
    empties the redo stack). Flushes; the caller commits. Raises ``StaleWriteError`` (writing
    nothing) when a row has been changed since the undo.
    """
    reverted = aliased(ChangeBatch)
    undone = select(ChangeBatch).join(reverted, col(reverted.id) == ChangeBatch.reverts_id)
    undone = undone.where(
        ChangeBatch.project_id == project_id, ChangeBatch.kind == "undo", col(reverted.undone).is_(True)
    )
    if own:
        undone = undone.where(col(reverted.actor) == actor)
    undo_batch = _newest(session, undone)
    if undo_batch is None:
        return None
    newer = _newest(
        session,
        select(ChangeBatch).where(*_changes(project_id, actor, own), col(ChangeBatch.id) > undo_batch.id),
    )
    if newer is not None:
        return None
    target = session.get(ChangeBatch, undo_batch.reverts_id)
    assert target is not None  # an undo batch always names the batch it reverted
    new_batch = ChangeBatch(
        project_id=project_id,
        actor=actor,
        description=f"redo: {target.description}",
        kind="redo",
        reverts_id=target.id,
    )
    affected = _invert(session, source=undo_batch, new_batch=new_batch, action="redo")
    target.undone = False
    session.add(target)
    session.flush()
    return HistoryResult(new_batch.id, target.id, target.description, affected)  # type: ignore[arg-type]
