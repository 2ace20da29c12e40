"""Following a project live: what changed since the page last drew, read cheaply from the outbox.

Every change to a project writes an event row in the same transaction (``store.events``), from
whichever surface or process made it, so "has anything changed?" is one indexed ``max(id)``
query per open page and tick; the page redraws only when the answer moved. A running job's
progress is read from its row (the job writes its annotations image by image).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ops import jobs
from ops.caller import Caller
from store.db import new_session
from store.events import latest_event_id
from ui import actions
from ui.services import UIServices

# A handler of the page that started this long before the timer sent its state may still have
# been running then, its output not yet in that state; a redraw from it would land after that
# output and undo it. Longer handlers are still in Gradio's queue when the redraw ends (below).
QUIET_S = 1.0


def _events(demo: Any) -> Iterator[Any]:
    """Every event Gradio's queue holds now, waiting or running (its private structures, pinned
    with gradio in constraints.txt; if they change, only the queue half of the check is lost)."""
    queue = getattr(demo, "_queue", None)
    for job in getattr(queue, "active_jobs", None) or []:
        yield from job or []
    for waiting in (getattr(queue, "event_queue_per_concurrency_id", None) or {}).values():
        yield from getattr(waiting, "queue", [])


def clobbers(
    services: UIServices, demo: Any, request: Any, own: Any, outputs: set[int], started: float
) -> bool:
    """Would a background redraw, begun at ``started`` from the page state the timer sent, overwrite
    something the person did meanwhile?

    Yes when an event of the page that draws any of the same components is still waiting or
    running, or when one of the page's handlers started since :data:`QUIET_S` before the timer
    sent that state (the redraw's own event joined Gradio's queue then; ``started`` when it cannot
    be found). The redraw is then dropped and the next tick, sent with the page's newer state,
    draws it. ``own`` is the redraw's own handler.
    """
    page = getattr(request, "session_hash", None)
    if page is None:
        return False
    sent = started
    for event in _events(demo):
        fn = getattr(event, "fn", None)
        if getattr(event, "session_hash", None) != page or fn is None:
            continue
        if getattr(fn, "fn", None) is own:
            sent = min(sent, getattr(event, "enqueue_time", sent))
            continue
        drawn = {getattr(block, "_id", None) for block in getattr(fn, "outputs", []) or []}
        if drawn & outputs:
            return True
    acted = services.acted.get(page)
    return acted is not None and acted >= sent - QUIET_S


@dataclass(frozen=True)
class Seen:
    """What a page last drew from: the newest event id, and the progress of the job it shows."""

    event: int = 0
    job: tuple[int, str, int] | None = None  # (job id, state, images done)


def latest(services: UIServices, project_id: int | None) -> int:
    """The project's newest event id (0: none yet)."""
    if project_id is None:
        return 0
    with new_session(services.engine) as session:
        return latest_event_id(session, project_id=project_id)


def look(
    services: UIServices, caller: Caller | None, project_id: int, last: Seen, job_id: int | None
) -> tuple[Seen, str | None, int | None]:
    """(what the page would draw from now, a new progress line or None, the job still followed).

    A job another page or the agent started is picked up when the events move; a job that ended
    is shown once more and then let go.
    """
    event = latest(services, project_id)
    if job_id is None and event != last.event:
        found = jobs.active(services.env, caller, project_id)
        job_id = found.id if found is not None else None
    if job_id is None:
        return Seen(event, None), None, None
    job = jobs.get(services.env, caller, project_id, job_id)
    now = Seen(event, (job.id, job.state, job.done))
    line = actions.progress_line(job) if now.job != last.job else None
    return now, line, (job_id if job.state in ("queued", "running") else None)
