"""Live changes of a project as Server-Sent Events: one JSON object per ``data:`` line."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from server.deps import BusDep, SessionDep, Viewer
from server.events import Event, Subscription

router = APIRouter(prefix="/projects/{project_id}/events", tags=["events"])
KEEPALIVE_S = 15.0


@router.get("", response_class=StreamingResponse)
async def stream(
    request: Request,
    access: Viewer,
    session: SessionDep,
    bus: BusDep,
    until_s: Annotated[
        float | None,
        Query(ge=0, le=86_400, description="End the stream after this long (clients reconnect)."),
    ] = None,
    after: Annotated[
        int | None, Query(ge=0, le=2**62, description="Replay the events after this id first.")
    ] = None,
    last_event_id: Annotated[str | None, Header(description="The id of the last event you saw.")] = None,
) -> StreamingResponse:
    """``{id, project_id, kind, action, ids, version, actor, via, data}`` per change, until you
    disconnect. A reconnecting client sends ``Last-Event-ID`` (browsers do) or ``after`` and gets
    the events it missed first (kept for two days)."""
    subscription = bus.subscribe(access.project_id)  # subscribe first: nothing falls between
    since = after if after is not None else (int(last_event_id) if (last_event_id or "").isdigit() else None)
    missed: list[Event] = []
    if since is not None:
        from store.events import events_after

        missed = [Event.of(r) for r in events_after(session, after_id=since, project_id=access.project_id)]
    session.close()  # the access check is done: hold no database connection for the stream's life
    return StreamingResponse(
        _events(request, subscription, until_s, missed),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _frame(event: Event) -> str:
    ident = f"id: {event.id}\n" if event.id else ""
    return f"{ident}event: {event.kind}\ndata: {json.dumps(event.to_dict())}\n\n"


async def _events(
    request: Request, subscription: Subscription, until_s: float | None, missed: list[Event]
) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + until_s if until_s is not None else float("inf")
    seen = 0
    try:
        yield ": connected\n\n"
        for event in missed:
            seen = event.id
            yield _frame(event)
        while not await request.is_disconnected() and loop.time() < deadline:
            try:
                wait = min(KEEPALIVE_S, deadline - loop.time())
                event = await asyncio.wait_for(subscription.get(), wait)
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            if event.id and event.id <= seen:  # replayed already
                continue
            yield _frame(event)
    finally:
        subscription.close()
