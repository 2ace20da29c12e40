"""The Review stream tab: one proposal at a time, most likely wrong first, decided with one key.

The order is :func:`ops.review_order.queue` (``exclude=`` the ones already shown gives the next),
so a reviewer spends their time where the labels are most likely wrong. Keys: ``a`` accept,
``r`` reject, ``1``-``9`` relabel to the project's n-th class, ``e`` edit in the Label tab,
``n``/→ next, ``b``/← back, ``+``/``-``/``0``/``z`` zoom (the wheel zooms too, a drag pans).
Decisions are the Label tab's actions (:mod:`ui.actions`) at the version drawn, as the person
signed in; a refusal is a ⚠️ line and the stream stays on the item. Zoom, pan and the mask
opacity are CSS on the page, so they cost no round trip.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import gradio as gr
from PIL import Image as PILImage

from ops import review_order
from ops.caller import Caller
from ops.review_order import ReviewItem
from store import get_image
from store.models import Image
from ui import actions, views
from ui.render import Overlay
from ui.services import UIServices
from ui.shared import Shared
from ui.tabs.label import LabelTab
from ui.tabs.stream_view import CSS, JS, KEYS, OPACITY_JS, empty_html, frame_html

Move = Callable[[Caller | None, "Stream"], tuple["Stream", str]]  # what a key does to the stream


@dataclass(frozen=True)
class Stream:
    """Where a reviewer is: the items shown so far (in order), which one is on screen, what they
    decided (the latest per annotation counts) and when they started (for the rate)."""

    project_id: int | None = None
    items: tuple[ReviewItem, ...] = ()
    at: int = 0  # index into items; len(items): past the last one, nothing left
    version: int | None = None  # the version of the item on screen, as drawn
    decided: tuple[tuple[int, str], ...] = ()
    started: float | None = None

    def current(self) -> ReviewItem | None:
        return self.items[self.at] if self.at < len(self.items) else None

    def rate(self, now: float) -> tuple[int, float | None]:
        """(proposals decided, decisions per minute since the stream started; None before any)."""
        n = len(dict(self.decided))
        if not n or self.started is None:
            return n, None
        return n, n / max((now - self.started) / 60, 1e-6)


def forward(services: UIServices, caller: Caller | None, stream: Stream) -> Stream:
    """The next item: the one after this in what was shown, else the queue's next unseen proposal."""
    if stream.at + 1 < len(stream.items):
        return replace(stream, at=stream.at + 1)
    if stream.project_id is None:
        return stream
    seen = [i.annotation_id for i in stream.items]
    found = review_order.queue(services.env, caller, stream.project_id, limit=1, exclude=seen)
    return replace(stream, items=stream.items + tuple(found), at=len(stream.items))


def back(stream: Stream) -> Stream:
    return replace(stream, at=max(0, stream.at - 1))


def decide(
    services: UIServices, caller: Caller | None, stream: Stream, kind: str, number: int | None = None
) -> tuple[Stream, str]:
    """Accept, reject or relabel (to the ``number``-th class) the item on screen, then move on.

    Raises one of :data:`ui.actions.ERRORS` (nothing written, the stream stays) when the caller
    may not, the item changed since it was drawn, or there is nothing on screen.
    """
    item = stream.current()
    if item is None or stream.project_id is None:
        raise ValueError("nothing on screen to decide: press b to go back, or open a project")
    if kind == "relabel":
        with views.reading(services, caller, stream.project_id, "category.read") as session:
            classes = views.class_names(session, stream.project_id)
        if number is None or not 1 <= number <= len(classes):
            raise ValueError(f"relabel keys are 1-{len(classes)} (the project's classes), got {number}")
        message = actions.relabel_annotation(
            services, caller, stream.project_id, item.annotation_id, stream.version, classes[number - 1]
        )
        what = f"relabel {classes[number - 1]}"
    elif kind in ("accepted", "rejected"):
        message = actions.set_annotation_status(
            services, caller, stream.project_id, item.annotation_id, stream.version, kind
        )
        what = kind
    else:
        raise ValueError(f"kind must be 'accepted', 'rejected' or 'relabel', got {kind!r}")
    done = replace(stream, decided=(*stream.decided, (item.annotation_id, what)))
    return forward(services, caller, done), message


def _shown(
    services: UIServices, caller: Caller | None, project_id: int, item: ReviewItem | None
) -> tuple[list[str], Overlay | None, Image | None, PILImage.Image | None]:
    """The project's classes, and the item's annotation as it is now, its image and the photo."""
    with views.reading(services, caller, project_id, "annotation.read") as session:
        classes = views.class_names(session, project_id)
        if item is None:
            return classes, None, None, None
        found = next((o for o in views.overlays(session, item.image_id) if o.id == item.annotation_id), None)
        image = get_image(session, image_id=item.image_id)
    if found is None or image is None:
        return classes, None, None, None
    with PILImage.open(services.home / image.path) as original:
        return classes, found, image, original.convert("RGB")


def draw(
    services: UIServices, caller: Caller | None, stream: Stream, now: float
) -> tuple[Stream, str, str, str]:
    """(the stream with the version drawn, the view's html, the item's lines, the rate line)."""
    if stream.project_id is None:
        return stream, empty_html("Open a project first."), "", ""
    item = stream.current()
    classes, found, image, photo = _shown(services, caller, stream.project_id, item)
    if item is None or found is None or image is None or photo is None:
        body = "Nothing left to review." if item is None else f"#{item.annotation_id} was deleted meanwhile."
        return (
            replace(stream, version=None),
            empty_html(f"{body} Press b to go back."),
            body,
            rate_line(stream, now),
        )
    view = frame_html(found, (image.width, image.height), photo)
    score = "no score" if found.score is None else f"score {found.score:.2f}"
    line = (
        f"**#{found.id} {html.escape(found.label)}** ({found.status}) on {html.escape(image.file_name)} · "
        f"{score} · p(wrong) {item.p_wrong:.2f} · item {stream.at + 1}"
    )
    legend = " · ".join(f"**{n}** {html.escape(c)}" for n, c in enumerate(classes[:9], 1))
    return replace(stream, version=found.version), view, f"{line}\n\n{legend}", rate_line(stream, now)


def rate_line(stream: Stream, now: float) -> str:
    n, per_minute = stream.rate(now)
    if per_minute is None:
        return "0 reviewed"
    return f"{n} reviewed · {per_minute:.1f} per minute"


def handle(
    services: UIServices, project_id: int | None, stream: Stream, request: Any, move: Move
) -> tuple[Any, ...]:
    """One key or button as the person behind ``request``: (stream, view, item, rate, message).

    A refusal is the message, and the stream stays where it was."""
    caller = services.caller(request)
    if stream.project_id != project_id:  # another project was opened: start over
        stream = Stream(project_id)
    note = ""
    try:
        if project_id is not None:
            stream, note = move(caller, stream)
    except actions.ERRORS as exc:
        note = actions.refusal(exc)
    if stream.items and stream.started is None:
        stream = replace(stream, started=time.time())
    try:
        return (*draw(services, caller, stream, time.time()), note)
    except actions.ERRORS as exc:  # e.g. removed from the project meanwhile
        return stream, gr.update(), gr.update(), gr.update(), actions.refusal(exc)


def build(
    services: UIServices, shared: Shared, label: LabelTab, tabs: gr.Tabs
) -> tuple[Callable[..., Any], list[Any]]:
    """The tab; ``label`` is the Label tab (``e`` opens the item there), ``tabs`` switches to it.
    Returns what opening the tab runs and fills, as the Review tab does."""
    state = gr.State(Stream())
    with gr.Row():
        with gr.Column(scale=5):
            view = gr.HTML(
                "<div class='lw-empty'>Open a project, then this tab.</div>", css_template=CSS, js_on_load=JS,
                elem_id="lw-stream-view",
            )  # fmt: skip
        with gr.Column(scale=2, min_width=260):
            info = gr.Markdown(elem_id="lw-stream-info")
            rate = gr.Markdown(elem_id="lw-stream-rate")
            message = gr.Markdown(elem_id="lw-stream-status")
            opacity = gr.Slider(0, 1, value=0.5, step=0.05, label="Mask opacity", elem_id="lw-stream-opacity")
            with gr.Row():
                accept = gr.Button("Accept (a)", variant="primary", elem_id="lw-stream-accept")
                reject = gr.Button("Reject (r)", variant="stop", elem_id="lw-stream-reject")
            with gr.Row():
                previous = gr.Button("← Back (b)", elem_id="lw-stream-back")
                after = gr.Button("Next (n) →", elem_id="lw-stream-next")
            edit = gr.Button("Edit in the Label tab (e)", size="sm", elem_id="lw-stream-edit")
            gr.Markdown(KEYS)
    out = [state, view, info, rate, message]
    # One reviewer's keys are handled in order, none dropped while one is in flight.
    serial: dict[str, Any] = {
        "concurrency_id": "lw-stream",
        "concurrency_limit": 1,
        "trigger_mode": "multiple",
    }

    def handler(move: Move) -> Callable[..., Any]:
        def run(project_id: int | None, stream: Stream, request: gr.Request) -> tuple[Any, ...]:
            return handle(services, project_id, stream, request, move)

        return run

    def opening(caller: Caller | None, stream: Stream) -> tuple[Stream, str]:
        return (stream if stream.items else forward(services, caller, stream)), ""

    moves: dict[Any, Move] = {
        accept.click: lambda caller, stream: decide(services, caller, stream, "accepted"),
        reject.click: lambda caller, stream: decide(services, caller, stream, "rejected"),
        after.click: lambda caller, stream: (forward(services, caller, stream), ""),
        previous.click: lambda caller, stream: (back(stream), ""),
    }
    for event, move in moves.items():
        event(handler(move), [shared.project, state], out, show_progress="hidden", **serial)

    def relabel(project_id: int | None, stream: Stream, evt: gr.EventData, request: gr.Request) -> Any:
        number = int((evt._data or {}).get("relabel", 0))
        move: Move = lambda caller, s: decide(services, caller, s, "relabel", number)  # noqa: E731
        return handle(services, project_id, stream, request, move)

    view.select(relabel, [shared.project, state], out, show_progress="hidden", **serial)

    def open_in_label(project_id: int | None, stream: Stream, request: gr.Request) -> tuple[Any, ...]:
        """Switch to the Label tab with the item's image open and its annotation selected."""
        item = stream.current()
        if item is None or project_id is None:
            return (*[gr.update()] * (3 + len(label.view_out)), "nothing on screen to edit")
        caller = services.caller(request)
        try:
            _classes, found, _image, _photo = _shown(services, caller, project_id, item)
            drawn = label.show(caller, project_id, item.image_id, item.annotation_id, [])
        except actions.ERRORS as exc:
            return (*[gr.update()] * (3 + len(label.view_out)), actions.refusal(exc))
        klass = gr.update(value=found.label) if found is not None else gr.update()
        return (gr.Tabs(selected="label"), item.image_id, klass, *drawn, "")

    edit.click(
        open_in_label,
        [shared.project, state],
        [tabs, shared.image, label.label_class, *label.view_out, message],
        **serial,
    )
    opacity.change(None, [opacity], None, js=OPACITY_JS)
    return handler(opening), out
