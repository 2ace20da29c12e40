"""The unit of work every operation runs in: authorize, write, record the events, commit once.

``with change(env, caller, "annotation.edit", project_id) as unit:`` opens one session, checks the
policy, and on leaving the block writes the unit's events to the outbox and commits, all in one
transaction: the change and its event land together or not at all. Bad input (a ``ValueError``
from the store) becomes :class:`~ops.errors.Invalid` and rolls everything back; a UNIQUE
violation under concurrency becomes :class:`~ops.errors.Conflict`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from ops.caller import Caller
from ops.errors import Conflict, Invalid, OpError
from ops.policy import Access, authorize, authorize_global
from store.db import new_session
from store.errors import NameTaken
from store.events import add_event
from store.history import begin_change
from store.models import ChangeBatch


@dataclass(frozen=True)
class Env:
    """What operations work on: the database and the data home (image files, exports)."""

    engine: Engine
    home: Path


@dataclass
class Unit:
    """One operation in progress: its session, the caller's access, its batch and events."""

    session: Session
    caller: Caller
    access: Access | None
    _batch: ChangeBatch | None = None
    _events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def project_id(self) -> int:
        assert self.access is not None, "a global operation has no project"
        return self.access.project_id

    def batch(self, description: str) -> ChangeBatch:
        """The change batch of this operation (opened on first use): one undo step."""
        if self._batch is None:
            self._batch = begin_change(
                self.session,
                project_id=self.project_id,
                actor=self.caller.username,
                description=description[:500],
                via=self.caller.via,
                agent_run_id=self.caller.agent_run_id,
            )
        return self._batch

    def event(
        self,
        kind: str,
        action: str,
        ids: list[int] | tuple[int, ...] = (),
        *,
        version: int | None = None,
        data: dict[str, Any] | None = None,
        project_id: int | None = None,
    ) -> None:
        """Publish ``kind``/``action`` about ``ids`` when the unit commits."""
        self._events.append(
            {
                "project_id": project_id if project_id is not None else self.project_id,
                "kind": kind,
                "action": action,
                "ids": list(ids),
                "version": version,
                "data": data or {},
            }
        )

    def _flush_events(self) -> None:
        for e in self._events:
            add_event(self.session, actor=self.caller.username, via=self.caller.via, **e)
        self._events.clear()


@contextmanager
def _run(session: Session, unit: Unit, commit: bool) -> Iterator[Unit]:
    try:
        yield unit
        if commit:
            unit._flush_events()
            session.commit()
    except OpError:
        session.rollback()
        raise
    except NameTaken as exc:
        session.rollback()
        raise Conflict(str(exc)) from None
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"conflicts with an existing row (a concurrent request won): {exc.orig}") from None
    except ValueError as exc:
        session.rollback()
        raise Invalid(str(exc)) from None
    except BaseException:
        session.rollback()
        raise


@contextmanager
def change(env: Env, caller: Caller | None, op: str, project_id: int) -> Iterator[Unit]:
    """A writing operation on one project: authorized, committed once with its events."""
    with new_session(env.engine) as session:
        access = authorize(session, caller, op, project_id)
        with _run(session, Unit(session, access.caller, access), commit=True) as unit:
            yield unit


@contextmanager
def read(env: Env, caller: Caller | None, op: str, project_id: int) -> Iterator[Unit]:
    """A reading operation on one project: authorized, never commits."""
    with new_session(env.engine) as session:
        access = authorize(session, caller, op, project_id)
        with _run(session, Unit(session, access.caller, access), commit=False) as unit:
            yield unit


@contextmanager
def global_op(env: Env, caller: Caller | None, op: str, *, commit: bool) -> Iterator[Unit]:
    """An operation outside any project (list or create projects)."""
    who = authorize_global(caller, op)
    with new_session(env.engine) as session, _run(session, Unit(session, who, None), commit) as unit:
        yield unit


def require(env: Env, caller: Caller | None, project_id: int, *ops: str) -> Access:
    """Refuse now unless the caller may do every one of ``ops`` in the project: for surfaces that
    do expensive work (a segmenter pass) before the operation that writes its result."""
    with new_session(env.engine) as session:
        access = authorize(session, caller, ops[0], project_id)
    for op in ops[1:]:
        access.require(op)
    return access


@contextmanager
def within(session: Session, caller: Caller, project_id: int) -> Iterator[Unit]:
    """Work inside a transaction someone else owns and commits (a job's per-image transaction).

    The permission was checked when the job was started; the unit records events but does not
    commit.
    """
    from store.models import Role

    unit = Unit(session, caller, Access(caller, project_id, Role.admin))
    yield unit
    unit._flush_events()
