"""Live change events: the outbox followed, and fanned out to the open streams.

Operations write each change's event into the store's outbox table in the change's own
transaction (``store.events``), whichever process made it (this server, another one, the CLI, a
worker). :class:`OutboxFollower` reads the rows past the last id it saw, a few times a second, and
publishes them on the :class:`EventBus`; each open ``/events`` stream holds a bounded asyncio
queue on the server's event loop. A subscriber that cannot keep up loses events (the queue is
bounded), and gets a ``lagged`` event so the client knows to reload rather than trust a gap it
cannot see; a client that reconnects names the last id it saw and is replayed from the table.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

QUEUE_SIZE = 1000


@dataclass(frozen=True)
class Event:
    project_id: int
    kind: str  # annotation | job | finding | category | project | image | member | lagged
    action: str = ""  # created | updated | deleted | undo | redo | queued | running | ...
    ids: list[int] = field(default_factory=list)
    version: int | None = None
    actor: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    via: str = ""
    id: int = 0  # the outbox row's id: a client's place in the stream

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, row: Any) -> Event:
        return cls(row.project_id, row.kind, row.action, list(row.ids), row.version, row.actor,
                   dict(row.data), row.via, row.id or 0)  # fmt: skip


class Subscription:
    def __init__(self, bus: EventBus, project_id: int, loop: asyncio.AbstractEventLoop) -> None:
        self.bus = bus
        self.project_id = project_id
        self.loop = loop
        self.queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_SIZE)
        self.lagged = False

    def offer(self, event: Event) -> None:
        """Runs on the subscriber's loop."""
        if self.queue.full():
            self.lagged = True
            return
        self.queue.put_nowait(event)

    async def get(self) -> Event:
        if self.lagged and self.queue.empty():
            self.lagged = False
            return Event(self.project_id, "lagged", data={"reason": "events were dropped; reload"})
        return await self.queue.get()

    def close(self) -> None:
        self.bus.unsubscribe(self)


class EventBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: list[Subscription] = []

    def subscribe(self, project_id: int) -> Subscription:
        """Call on the event loop that will read the subscription."""
        sub = Subscription(self, project_id, asyncio.get_running_loop())
        with self._lock:
            self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def publish(self, event: Event) -> None:
        """Thread-safe, never blocks; events of a project reach only its subscribers."""
        with self._lock:
            targets = [s for s in self._subs if s.project_id == event.project_id]
        for sub in targets:
            try:
                sub.loop.call_soon_threadsafe(sub.offer, event)
            except RuntimeError:  # the subscriber's loop has closed
                self.unsubscribe(sub)

    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subs)


class OutboxFollower:
    """A thread publishing every committed outbox row on ``bus``, in id order, starting after the
    rows that existed when it started."""

    def __init__(self, engine: Any, bus: EventBus, poll_s: float = 0.2) -> None:
        self.engine = engine
        self.bus = bus
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: Any = None
        self.last_id = 0

    def start(self) -> None:
        from store.db import new_session
        from store.events import latest_event_id
        from store.notify import EventListener

        # LISTEN before the first read (PostgreSQL): a commit in between still wakes us.
        self._listener = EventListener(self.engine)
        with new_session(self.engine) as session:
            self.last_id = latest_event_id(session)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="labelwright-events", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def poll(self) -> int:
        """Publish what is new; returns how many events."""
        from store.db import new_session
        from store.events import events_after

        with new_session(self.engine) as session:
            rows = events_after(session, after_id=self.last_id)
        for row in rows:
            self.bus.publish(Event.of(row))
            self.last_id = row.id or self.last_id
        return len(rows)

    def _run(self) -> None:
        import logging

        while not self._stop.is_set():
            try:
                if self.poll():
                    continue  # more may be waiting: read on without sleeping
            except Exception:  # a locked or briefly unavailable database: try again shortly
                logging.getLogger("labelwright.events").exception("reading the event outbox failed")
            if self._listener is not None and self._listener.pushes:
                self._listener.wait(self.poll_s)  # woken by NOTIFY the moment a change commits
            else:
                self._stop.wait(self.poll_s)
