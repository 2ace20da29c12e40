"""In-process publish/subscribe of small change events, for live collaboration.

Routes (running in worker threads) and the job runner (its own thread) publish; each open
``/events`` stream holds a bounded asyncio queue on the server's event loop. A subscriber that
cannot keep up loses events (the queue is bounded), and gets a ``lagged`` event so the client
knows to reload rather than trust a gap it cannot see.
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
    kind: str  # annotation | job | finding | category | history | image
    action: str = ""  # created | updated | deleted | progress | ...
    ids: list[int] = field(default_factory=list)
    version: int | None = None
    actor: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
