"""The frame scrubber under the Label tab's canvas: shown when the open image is a video frame.

A slider over the video's sampled frames, ◀/▶ buttons and the keys ←/→ (or ,/.) move the canvas
to another frame; a selected annotation on a track stays selected on the new frame (the same
track's annotation there), so a person can follow one object. Everything the canvas does on a
photo works on a frame: correct a box or mask with the usual tools, then **Propagate** re-tracks
that track from this frame on (:func:`ui.actions.propagate`).

A new shape drawn or segmented on a frame goes on the track picked in **Track for new shapes**: a
new track (the default) or one of the video's tracks, so Propagate can follow it. With the strip's
class, status or "unlabelled only" filter set, ◀/▶ step through the frames that filter keeps (the
same query as the strip: :func:`ui.views.strip_filter`), and the line names them; the slider still
reaches every frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr
from sqlmodel import Session

from ops import tracks as ops_tracks
from ops.annotations import NEW_TRACK
from ops.caller import Caller
from ui import actions, views
from ui.services import UIServices
from ui.shared import Shared
from ui.video_views import (
    Frames,
    filter_note,
    frames_of,
    matching_frames,
    same_track,
    step,
    track_choices,
    tracks_on,
)

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
    track: gr.Dropdown  # the track a new shape goes on: NEW_TRACK or a track id (as text)
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
        track = gr.Dropdown(
            [("New track", NEW_TRACK)], value=NEW_TRACK, label="Track for new shapes on this video",
            elem_id="lw-track-for-new",
        )  # fmt: skip
    return Scrubber(group, line, slider, prev, nxt, propagate, track, frames)


def _matches(
    session: Session, project_id: int, found: Frames, klass: str, state: str, todo: bool
) -> set[int] | None:
    """The frames of the open video the strip's filter keeps; None when no filter is set."""
    where = views.strip_filter(session, project_id, class_name=klass, status=state, unlabelled=todo)
    if where == {}:
        return None
    return set() if where is None else matching_frames(session, project_id, found.video_id, where)


def wire(
    services: UIServices,
    shared: Shared,
    scrub: Scrubber,
    show: Callable[..., tuple[Any, Any, Any]],
    polygon: gr.State,
    view_out: list[Any],
    annotations: gr.Radio,
    refresh: tuple[Callable[..., Any], list[Any], list[Any]],
    filters: list[Any],
) -> tuple[Callable[..., Any], list[Any], list[Any]]:
    """Connect the scrubber: ``show`` draws the canvas (see :class:`ui.tabs.label.LabelTab`),
    ``annotations`` is the list whose value names the selection, ``refresh`` (function, inputs,
    outputs) redraws the strip after a change to annotations, ``filters`` are the strip's class,
    status and "unlabelled only" boxes. Returns the scrubber's own refresh (function, inputs,
    outputs), for the Label tab to run after a change to annotations (new tracks, matching frames)."""

    def sync(
        project_id: int | None, image_id: int | None, klass: str, state: str, todo: bool, track: str | None,
        request: gr.Request,
    ) -> tuple[Any, ...]:  # fmt: skip
        """Show the scrubber at the open frame (with the filter's frames and the video's tracks),
        or hide it on a photo."""
        caller = services.caller(request)
        try:
            if project_id is None:
                raise ValueError("no project")
            with views.reading(services, caller, project_id, "image.read") as session:
                found = frames_of(session, project_id, image_id)
                if found is not None:
                    matches = _matches(session, project_id, found, klass, state, todo)
                    on_frame = tracks_on(session, image_id or 0)
            if found is not None:
                tracks = ops_tracks.list_tracks(services.env, caller, project_id, video_id=found.video_id)
        except actions.ERRORS:
            found = None
        if found is None:
            return [], gr.update(visible=False), gr.update(), gr.update(), gr.update()
        slider = gr.update(minimum=1, maximum=max(2, len(found.ids)), value=found.position + 1)
        line = found.line + filter_note(found.ids, image_id, matches)
        choices, value = track_choices(tracks, on_frame, track)
        return found.ids, gr.update(visible=True), slider, line, gr.update(choices=choices, value=value)

    sync_in = [shared.project, shared.image, *filters, scrub.track]
    shown = [scrub.frames, scrub.group, scrub.slider, scrub.line, scrub.track]
    shared.image.change(sync, sync_in, shown, show_progress="hidden")
    for widget in filters:
        widget.change(sync, sync_in, shown, show_progress="hidden")

    def move(caller: Caller | None, project_id: int, image_id: int, selected: int | None) -> tuple[Any, ...]:
        with views.reading(services, caller, project_id) as session:
            follow = same_track(session, selected, image_id)
        return (image_id, [], *show(caller, project_id, image_id, follow, []))

    unchanged = [gr.update()] * (2 + len(view_out))

    def go(
        project_id: int | None, ids: list[int], value: float, selected: int | None, request: gr.Request
    ) -> Any:
        if project_id is None or not ids:
            return tuple(unchanged)
        position = max(0, min(len(ids) - 1, int(value) - 1))  # 1-based
        return move(services.caller(request), project_id, ids[position], selected)

    def stepper(delta: int) -> Callable[..., Any]:
        def run(
            project_id: int | None, ids: list[int], image_id: int | None, selected: int | None, klass: str,
            state: str, todo: bool, request: gr.Request,
        ) -> Any:  # fmt: skip
            """To the next (previous) frame, or the next (previous) one the strip's filter keeps."""
            if project_id is None or not ids:
                return (*unchanged, gr.update())
            caller = services.caller(request)
            with views.reading(services, caller, project_id, "image.read") as session:
                found = frames_of(session, project_id, image_id)
                matches = None if found is None else _matches(session, project_id, found, klass, state, todo)
            target = step(ids, image_id, delta, matches)
            if target is None:
                way = "later" if delta > 0 else "earlier"
                line = found.line + filter_note(ids, image_id, matches) if found is not None else ""
                return (*unchanged, f"{line} · no {way} frame matches the filter")
            return (*move(caller, project_id, target, selected), gr.update())

        return run

    moved = [shared.image, polygon, *view_out]
    scrub.slider.input(
        go, [shared.project, scrub.frames, scrub.slider, shared.selected], moved,
        trigger_mode="always_last", show_progress="hidden",
    )  # fmt: skip
    for button, delta in ((scrub.prev, -1), (scrub.next, 1)):
        button.click(
            stepper(delta), [shared.project, scrub.frames, shared.image, shared.selected, *filters],
            [*moved, scrub.line], show_progress="hidden",
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

    again = (sync, sync_in, shown)
    scrub.propagate.click(
        propagate, [shared.project, shared.image, annotations], [shared.status, *view_out]
    ).then(*refresh).then(*again)
    return again
