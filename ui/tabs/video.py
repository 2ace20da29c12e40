"""The frame scrubber under the Label tab's canvas: shown when the open image is a video frame.

A slider over the video's sampled frames, ◀/▶ buttons and the keys ←/→ (or ,/.) move the canvas
to another frame; a selected annotation on a track stays selected on the new frame (the same
track's annotation there), so a person can follow one object. Everything the canvas does on a
photo works on a frame: correct a box or mask with the usual tools, then **Propagate** re-tracks
that track from this frame on (:func:`ui.actions.propagate`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from ops.caller import Caller
from ui import actions, views
from ui.services import UIServices
from ui.shared import Shared
from ui.video_views import frames_of, same_track

# Keys move frames when the scrubber is on screen and no text field has the focus.
KEYS_JS = """
if (window.lwFrameKeys) document.removeEventListener('keydown', window.lwFrameKeys);
window.lwFrameKeys = (e) => {
  const next = document.querySelector('#lw-frame-next');
  if (!element.isConnected || !next || next.offsetParent === null) return;
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.target.closest && e.target.closest('input, textarea, select, [contenteditable=true]')) return;
  const which = {ArrowLeft: 'prev', ',': 'prev', ArrowRight: 'next', '.': 'next'}[e.key];
  if (!which) return;
  document.querySelector('#lw-frame-' + which).click();
  e.preventDefault();
};
document.addEventListener('keydown', window.lwFrameKeys);
"""


@dataclass
class Scrubber:
    group: gr.Group
    line: gr.Markdown
    slider: gr.Slider
    prev: gr.Button
    next: gr.Button
    propagate: gr.Button
    frames: gr.State  # image ids of the open video's frames in frame order; [] on a photo


def make() -> Scrubber:
    """The scrubber's components, placed where it is called (under the canvas), hidden at first."""
    frames = gr.State([])
    gr.HTML("", js_on_load=KEYS_JS, elem_id="lw-frame-keys", padding=False)
    with gr.Group(visible=False, elem_id="lw-scrubber") as group:
        line = gr.Markdown(elem_id="lw-frame-line")
        with gr.Row():
            prev = gr.Button("◀ Prev frame (←)", size="sm", elem_id="lw-frame-prev", scale=0, min_width=140)
            slider = gr.Slider(1, 2, value=1, step=1, label="Frame", elem_id="lw-frame", scale=4)
            nxt = gr.Button("Next frame (→) ▶", size="sm", elem_id="lw-frame-next", scale=0, min_width=140)
            propagate = gr.Button(
                "Propagate", size="sm", variant="primary", elem_id="lw-propagate", scale=0, min_width=120
            )
    return Scrubber(group, line, slider, prev, nxt, propagate, frames)


def wire(
    services: UIServices,
    shared: Shared,
    scrub: Scrubber,
    show: Callable[..., tuple[Any, Any, Any]],
    polygon: gr.State,
    view_out: list[Any],
    annotations: gr.Radio,
    refresh: tuple[Callable[..., Any], list[Any], list[Any]],
) -> None:
    """Connect the scrubber: ``show`` draws the canvas (see :class:`ui.tabs.label.LabelTab`),
    ``annotations`` is the list whose value names the selection, ``refresh`` (function, inputs,
    outputs) redraws the strip after a change to annotations."""

    def sync(project_id: int | None, image_id: int | None, request: gr.Request) -> tuple[Any, ...]:
        """Show the scrubber at the open frame, or hide it on a photo."""
        try:
            if project_id is None:
                raise ValueError("no project")
            with views.reading(services, services.caller(request), project_id, "image.read") as session:
                found = frames_of(session, project_id, image_id)
        except actions.ERRORS:
            found = None
        if found is None:
            return [], gr.update(visible=False), gr.update(), gr.update()
        slider = gr.update(minimum=1, maximum=max(2, len(found.ids)), value=found.position + 1)
        return found.ids, gr.update(visible=True), slider, found.line

    shown = [scrub.frames, scrub.group, scrub.slider, scrub.line]
    shared.image.change(sync, [shared.project, shared.image], shown, show_progress="hidden")

    def move(
        caller: Caller | None, project_id: int | None, ids: list[int], position: int, selected: int | None
    ) -> tuple[Any, ...]:
        if project_id is None or not ids:
            return (gr.update(), gr.update(), *[gr.update()] * len(view_out))
        image_id = ids[max(0, min(len(ids) - 1, int(position)))]
        with views.reading(services, caller, project_id) as session:
            follow = same_track(session, selected, image_id)
        return (image_id, [], *show(caller, project_id, image_id, follow, []))

    def go(
        project_id: int | None, ids: list[int], value: float, selected: int | None, request: gr.Request
    ) -> Any:
        return move(services.caller(request), project_id, ids, int(value) - 1, selected)  # 1-based

    def step(delta: int) -> Callable[..., Any]:
        def run(
            project_id: int | None, ids: list[int], image_id: int | None, selected: int | None,
            request: gr.Request,
        ) -> Any:  # fmt: skip
            here = ids.index(image_id) if image_id in ids else 0
            return move(services.caller(request), project_id, ids, here + delta, selected)

        return run

    moved = [shared.image, polygon, *view_out]
    scrub.slider.input(
        go, [shared.project, scrub.frames, scrub.slider, shared.selected], moved,
        trigger_mode="always_last", show_progress="hidden",
    )  # fmt: skip
    for button, delta in ((scrub.prev, -1), (scrub.next, 1)):
        button.click(
            step(delta), [shared.project, scrub.frames, shared.image, shared.selected], moved,
            show_progress="hidden",
        )  # fmt: skip

    def propagate(
        project_id: int | None, image_id: int | None, value: str | None, request: gr.Request
    ) -> tuple[Any, ...]:
        """Re-follow the selected annotation's track from this frame (the list's value names the
        version the person saw)."""
        caller = services.caller(request)
        selected, version = views.parse_choice(value)
        try:
            if project_id is None or selected is None:
                raise ValueError("select the corrected annotation first (list below the canvas)")
            message = actions.propagate(services, caller, project_id, selected, version)
        except actions.ERRORS as exc:
            message = actions.refusal(exc)
        return (message, *show(caller, project_id, image_id, selected, []))

    scrub.propagate.click(
        propagate, [shared.project, shared.image, annotations], [shared.status, *view_out]
    ).then(*refresh)
