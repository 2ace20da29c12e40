"""Event wake-ups across connections: NOTIFY reaches a listener on another connection at commit
(PostgreSQL); SQLite's listener is a plain sleep."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from store.db import new_session
from store.events import add_event
from store.models import Project
from store.notify import EventListener, wait_for_events


def _write_event(engine: Engine, project_id: int, *, commit: bool = True) -> None:
    with new_session(engine) as session:
        add_event(session, project_id=project_id, kind="annotation", action="created", ids=[1])
        session.commit() if commit else session.rollback()


def test_a_committed_event_wakes_a_listener_on_another_connection(
    engine: Engine, session: Session, project: Project
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite followers poll")
    session.commit()
    with EventListener(engine) as listener:
        assert listener.pushes and listener.wait(0.2) == set()  # nothing yet
        _write_event(engine, project.id, commit=False)  # rolled back: never announced
        assert listener.wait(0.3) == set()
        writer = threading.Timer(0.2, _write_event, args=(engine, project.id))
        started = time.perf_counter()
        writer.start()
        woke = listener.wait(5.0)
        latency = time.perf_counter() - started - 0.2
        writer.join()
        assert woke == {project.id} and latency < 0.5, latency
        for _ in range(3):  # several commits while nobody waits: one wait takes them all
            _write_event(engine, project.id)
        assert listener.wait(1.0) == {project.id} and listener.wait(0.1) == set()


def test_wait_for_events_times_out_and_sqlite_sleeps(engine: Engine, project: Project) -> None:
    started = time.perf_counter()
    assert wait_for_events(engine, 0.2) == set()
    assert 0.15 < time.perf_counter() - started < 3
    with pytest.raises(ValueError, match="timeout must be >= 0 seconds, got -1"):
        EventListener(engine).wait(-1)
