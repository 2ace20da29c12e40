"""Wake-ups for followers of the event outbox (``store.events``) in other processes.

On PostgreSQL, migration 0005 puts a trigger on ``projectevent`` that sends ``NOTIFY
labelwright_events`` with the project id; PostgreSQL delivers it when the writing transaction
commits (never for one rolled back), so a follower blocked in :meth:`EventListener.wait` wakes
as soon as any process, server or worker, commits a change. SQLite has no such signal:
``wait`` simply sleeps its timeout, and the follower polls. Either way the outbox stays the truth:
a wake-up only says "read ``events_after`` now", so a lost notification costs latency, never data.

The follower's loop, the same on both engines::

    listener = EventListener(engine)       # LISTEN before the first read: nothing falls between
    while running:
        for event in events_after(session, after_id=last): ...
        listener.wait(timeout=1.0)
"""

from __future__ import annotations

import time

from sqlalchemy.engine import Engine

CHANNEL = "labelwright_events"


class EventListener:
    """A dedicated connection LISTENing on :data:`CHANNEL` (PostgreSQL), or a sleeper (SQLite)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.pushes = engine.dialect.name == "postgresql"  # False: wait() is a plain sleep
        self._conn = None
        if self.pushes:
            self._connect()

    def _connect(self) -> None:
        import psycopg

        url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._conn = psycopg.connect(url, autocommit=True)
        self._conn.execute(f"LISTEN {CHANNEL}")

    def wait(self, timeout: float) -> set[int]:
        """Block until events are committed somewhere or ``timeout`` seconds pass.

        Returns:
            The ids of the projects that got events (all notifications waiting are taken at
            once); empty on timeout, always empty on SQLite.
        """
        if timeout < 0:
            raise ValueError(f"timeout must be >= 0 seconds, got {timeout}")
        if not self.pushes:
            time.sleep(timeout)
            return set()
        import psycopg

        try:
            if self._conn is None or self._conn.closed:
                self._connect()  # after a lost connection: events in between are in the outbox
                return set()
            assert self._conn is not None
            got = [n.payload for n in self._conn.notifies(timeout=timeout, stop_after=1)]
            while got and (more := [n.payload for n in self._conn.notifies(timeout=0.005)]):
                got += more  # take what else is waiting, so one wake-up covers a burst
        except psycopg.OperationalError:  # the server went away: reconnect on the next wait
            self.close()
            time.sleep(min(timeout, 1.0))
            return set()
        return {int(p) for p in got if p.isdigit()}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> EventListener:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def wait_for_events(engine: Engine, timeout: float) -> set[int]:
    """One wait on a listener of its own (see :class:`EventListener`; a loop should keep one:
    events committed before this call's LISTEN do not wake it)."""
    with EventListener(engine) as listener:
        return listener.wait(timeout)
