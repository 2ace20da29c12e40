"""Live changes of a project as Server-Sent Events: one JSON object per ``data:`` line."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from server.deps import BusDep, SessionDep, Viewer
from server.events import Subscription

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
) -> StreamingResponse:
    """``{project_id, kind, action, ids, version, actor, data}`` per change, until you disconnect."""
    session.close()  # the access check is done: hold no database connection for the stream's life
    subscription = bus.subscribe(access.project_id)
    return StreamingResponse(
        _events(request, subscription, until_s),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(request: Request, subscription: Subscription, until_s: float | None) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + until_s if until_s is not None else float("inf")
    try:
        yield ": connected\n\n"
        while not await request.is_disconnected() and loop.time() < deadline:
            try:
                wait = min(KEEPALIVE_S, deadline - loop.time())
                event = await asyncio.wait_for(subscription.get(), wait)
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            yield f"event: {event.kind}\ndata: {json.dumps(event.to_dict())}\n\n"
    finally:
        subscription.close()
