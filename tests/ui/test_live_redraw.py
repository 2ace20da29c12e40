"""The live redraw never overwrites what a person did meanwhile (ui.live.clobbers).

The browser tests show the race end to end (a click on the annotation list right after Undo, the
canvas right after an upload); these pin the rule itself, and that the Gradio queue internals it
reads still exist in the pinned Gradio.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from store.db import open_engine
from ui import live
from ui.services import UIServices


@pytest.fixture
def services(tmp_path: Path) -> UIServices:
    engine = open_engine(tmp_path / "labelwright.db")
    return UIServices(engine=engine, home=tmp_path, models_dir=tmp_path / "models", backends=lambda: None)


def queue_with(*events: SimpleNamespace) -> SimpleNamespace:
    waiting = SimpleNamespace(queue=list(events))
    return SimpleNamespace(
        _queue=SimpleNamespace(active_jobs=[None], event_queue_per_concurrency_id={"x": waiting})
    )


def event(page: str, fn: object, outputs: list[int], enqueued: float = 0.0) -> SimpleNamespace:
    blocks = [SimpleNamespace(_id=i) for i in outputs]
    return SimpleNamespace(
        session_hash=page, fn=SimpleNamespace(fn=fn, outputs=blocks), enqueue_time=enqueued
    )


def tick() -> None: ...


def click() -> None: ...


def test_a_page_that_just_acted_holds_the_redraw_back(services: UIServices) -> None:
    request = SimpleNamespace(session_hash="page-a", username=None)
    started = time.monotonic()
    assert not live.clobbers(services, queue_with(), request, tick, {1, 2}, started)
    services.caller(request)  # a handler of page a starts (every handler asks for its caller)
    assert live.clobbers(services, queue_with(), request, tick, {1, 2}, started)
    other = SimpleNamespace(session_hash="page-b", username=None)
    assert not live.clobbers(services, queue_with(), other, tick, {1, 2}, started)
    services.background_caller(other)  # the timer's own lookup is not an action
    assert not live.clobbers(services, queue_with(), other, tick, {1, 2}, started)


def test_the_window_counts_from_when_the_timer_sent_the_state(services: UIServices) -> None:
    """A tick that waited in Gradio's queue: a handler that started after the tick was sent, but
    before the redraw began, still holds it back; one a while before the tick was sent does not."""
    request = SimpleNamespace(session_hash="page-a", username=None)
    services.caller(request)
    acted = services.acted["page-a"]
    waited = queue_with(event("page-a", tick, [1], enqueued=acted - 0.5))
    assert live.clobbers(services, waited, request, tick, {1}, acted + 5)
    sent_late = queue_with(event("page-a", tick, [1], enqueued=acted + live.QUIET_S + 1))
    assert not live.clobbers(services, sent_late, request, tick, {1}, acted + live.QUIET_S + 2)


def test_an_event_of_the_page_drawing_the_same_parts_holds_it_back(services: UIServices) -> None:
    request = SimpleNamespace(session_hash="page-a", username=None)
    later = time.monotonic() + 10 * live.QUIET_S  # long after any action
    stamp = later - 1  # the tick's own event joined the queue just before it ran
    pending = event("page-a", click, [2, 9])
    assert live.clobbers(services, queue_with(pending), request, tick, {1, 2}, later)
    assert not live.clobbers(services, queue_with(event("page-a", click, [7])), request, tick, {1, 2}, later)
    assert not live.clobbers(services, queue_with(event("page-b", click, [2])), request, tick, {1, 2}, later)
    own = event("page-a", tick, [2], enqueued=stamp)
    assert not live.clobbers(services, queue_with(own), request, tick, {1, 2}, later)


def test_the_gradio_queue_still_has_what_the_rule_reads() -> None:
    """A Gradio upgrade that renames these would silently turn half of the rule off."""
    import gradio as gr
    from gradio.queueing import Event, EventQueue, Queue

    with gr.Blocks() as demo:
        button = gr.Button()
        out = gr.Textbox()
        button.click(lambda: "x", None, out)
    demo.queue()
    assert isinstance(demo._queue, Queue)
    assert hasattr(demo._queue, "active_jobs") and hasattr(demo._queue, "event_queue_per_concurrency_id")
    assert "queue" in EventQueue.__init__.__code__.co_names
    assert {"session_hash", "fn", "enqueue_time"} <= set(Event.__init__.__code__.co_names)
    fn = next(iter(demo.fns.values()))
    assert [block._id for block in fn.outputs] == [out._id] and callable(fn.fn)


def _follow(demo: object) -> object:
    """The app's timer handler (the one function that draws live redraws)."""
    return next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "follow")  # type: ignore[attr-defined]


def test_a_dropped_redraw_keeps_following_a_job_that_just_ended(
    services: UIServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race CI hit: a 10-frame job ended within a second of the Label click, so the tick that
    saw it end was held back; it must still hand the job back, or the page lets go of the job and
    its progress line stays "job queued" for good."""
    from ops import projects
    from ops.caller import local_caller
    from store import create_job, finish_job, new_session
    from ui.app import build_ui
    from ui.views import ALL

    project = projects.create_project(services.env, local_caller(), name="p").id
    with new_session(services.engine) as session:
        job = create_job(session, project_id=project, kind="label", total=10)
        session.commit()
        job_id = job.id
        finish_job(session, job_id=job_id, state="done")
    follow = _follow(build_ui(services))
    request = SimpleNamespace(session_hash="page-a", username=None)
    page = (project, live.Seen(), job_id, None, None, [], ALL, ALL, False)

    monkeypatch.setattr(live, "clobbers", lambda *a: True)
    held = follow(*page, request)  # type: ignore[operator]
    assert held[0] == live.Seen() and held[2] == job_id  # nothing drawn, the job still followed

    monkeypatch.setattr(live, "clobbers", lambda *a: False)
    drawn = follow(*page, request)  # type: ignore[operator]
    assert drawn[2] is None and "done" in drawn[3]  # the next tick shows it ended, then lets go
