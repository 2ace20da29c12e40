"""Outbox ids follow commit order on every engine, so a follower reading ``id > last`` misses
nothing: on PostgreSQL two transactions writing events commit them one after the other."""

from __future__ import annotations

import threading
import time

from sqlalchemy.engine import Engine
from sqlmodel import Session

from store.db import new_session
from store.events import add_event, events_after
from store.models import Project


def test_a_later_transaction_cannot_commit_an_event_below_an_open_one(
    engine: Engine, session: Session, project: Project
) -> None:
    session.commit()  # the fixture's project, out of the way of the two writers below
    first = new_session(engine)
    early = add_event(first, project_id=project.id, kind="annotation", action="created", ids=[1])
    committed = threading.Event()

    def second() -> None:
        with new_session(engine) as session:
            add_event(session, project_id=project.id, kind="annotation", action="created", ids=[2])
            session.commit()
        committed.set()

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.5)
    with new_session(engine) as reader:  # what a follower sees while the first is still open
        assert events_after(reader, after_id=0) == []
    assert not committed.is_set()  # the second waits for the first's commit
    first.commit()
    first.close()
    thread.join(10)
    assert committed.is_set()
    with new_session(engine) as reader:
        rows = events_after(reader, after_id=0)
    assert [r.ids for r in rows] == [[1], [2]] and rows[0].id == early.id < rows[1].id
