"""The Label tab: chat beside the canvas, the annotation editor, and the filtered image strip."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from ops.caller import Caller
from ui import actions, views
from ui.canvas import gesture, make_canvas
from ui.services import UIServices
from ui.shared import Shared
from ui.tabs import video
from ui.tabs.chat import run_chat

MODES = ["Segment", "Select", "Draw box", "Polygon"]
MODE_HELP = {
    "Segment": "Click an object, or drag a box around it, to segment it as the chosen class.",
    "Select": "Click an annotation to select it.",
    "Draw box": "Drag a box: it reshapes the annotation picked in the list, or adds one.",
    "Polygon": "Click the corners, then 'Finish polygon'. It reshapes the picked annotation, or adds one.",
}


@dataclass
class LabelTab:
    chatbot: gr.Chatbot
    canvas: gr.HTML
    annotations: gr.Radio
    gallery: gr.Gallery
    strip_ids: gr.State
    strip_note: gr.Markdown
    class_filter: gr.Dropdown
    status_filter: gr.Dropdown
    unlabelled: gr.Checkbox
    label_class: gr.Dropdown
    # (caller, project, image, selected, polygon) -> selected, canvas html, annotation list
    show: Callable[..., tuple[Any, Any, Any]]
    # (caller, project, class, status, unlabelled) -> strip_out
    strip: Callable[..., tuple[Any, Any, Any]]
    strip_in: list[Any]  # after the caller: project and the filters
    strip_out: list[Any]
    view_out: list[Any]  # what show() fills
    polygon: gr.State  # the corners of the polygon being drawn


def hit(
    services: UIServices, caller: Caller | None, project_id: int, image_id: int, x: float, y: float
) -> int | None:
    """The smallest annotation under the point (mask where there is one, else box)."""
    from store.masks import mask_from_rle

    with views.reading(services, caller, project_id) as session:
        found = []
        for ov in views.overlays(session, image_id):
            bx, by, bw, bh = ov.bbox
            if not (bx <= x <= bx + bw and by <= y <= by + bh):
                continue
            if ov.mask is not None and not mask_from_rle(ov.mask)[int(y), int(x)]:
                continue
            found.append((bw * bh, ov.id))
    return min(found)[1] if found else None


def build(services: UIServices, shared: Shared) -> LabelTab:
    polygon = gr.State([])
    with gr.Row():
        with gr.Column(scale=2, min_width=300):
            chatbot = gr.Chatbot(label="Agent", height=520, elem_id="lw-chat", buttons=["copy"])
            chat_in = gr.Textbox(
                placeholder="e.g. label every pedestrian", show_label=False, elem_id="lw-chat-input"
            )
            send = gr.Button("Send", elem_id="lw-chat-send")
        with gr.Column(scale=5):
            with gr.Row():
                mode = gr.Radio(MODES, value="Segment", label="Tool", elem_id="lw-mode", scale=3)
                label_class = gr.Dropdown(
                    [], label="Class", allow_custom_value=True, elem_id="lw-class", scale=2
                )
            mode_help = gr.Markdown(MODE_HELP["Segment"])
            canvas = make_canvas()
            scrub = video.make()  # the frame scrubber, shown on a video's frame
            with gr.Row():
                finish = gr.Button("Finish polygon", size="sm", elem_id="lw-poly-finish")
                clear = gr.Button("Clear polygon", size="sm")
            annotations = gr.Radio([], label="Annotations on this image", elem_id="lw-annotations")
            with gr.Row():
                relabel = gr.Button("Relabel as class", size="sm", elem_id="lw-relabel")
                accept = gr.Button("Accept", size="sm", elem_id="lw-accept")
                reject = gr.Button("Reject", size="sm", elem_id="lw-reject")
                delete = gr.Button("Delete", size="sm", variant="stop", elem_id="lw-delete")
                undo = gr.Button("Undo", size="sm", elem_id="lw-undo")
    with gr.Row():
        class_filter = gr.Dropdown([views.ALL], value=views.ALL, label="Class", elem_id="lw-filter-class")
        status_filter = gr.Dropdown([views.ALL, *views.STATUSES], value=views.ALL, label="Status")
        unlabelled = gr.Checkbox(label="Unlabelled only (none of this class/status)", value=False)
    strip_note = gr.Markdown()
    gallery = gr.Gallery(
        label="Images",
        columns=6,
        height=220,
        allow_preview=False,
        elem_id="lw-strip",
        object_fit="contain",
        fit_columns=False,
    )
    strip_ids = gr.State([])
    strip_in = [shared.project, class_filter, status_filter, unlabelled]
    strip_out = [gallery, strip_ids, strip_note]

    def strip(caller: Caller | None, project_id: int | None, klass: str, state: str, todo: bool) -> Any:
        if project_id is None:
            return [], [], "No project selected."
        with views.reading(services, caller, project_id, "image.read") as session:
            return views.image_strip(
                services.home, session, project_id, class_name=klass, status=state, unlabelled=todo
            )

    def show(
        caller: Caller | None,
        project_id: int | None,
        image_id: int | None,
        selected: int | None,
        points: list[list[float]],
    ) -> tuple[Any, Any, Any]:
        """Draw the canvas and the list as they are now; the list's value carries the version
        drawn, which edits name (a selection someone deleted meanwhile is dropped)."""
        if project_id is None:
            return None, views.canvas_html(None), gr.update(choices=[], value=None)
        with views.reading(services, caller, project_id) as session:
            html = views.canvas(services.home, session, image_id, selected, points)
            choices = views.annotation_choices(session, image_id)
        value = next((v for _, v in choices if views.parse_choice(v)[0] == selected), None)
        return (selected if value else None), html, gr.update(choices=choices, value=value)

    view_out = [shared.selected, canvas, annotations]

    def strip_for(project_id: int | None, klass: str, state: str, todo: bool, request: gr.Request) -> Any:
        try:
            return strip(services.caller(request), project_id, klass, state, todo)
        except actions.ERRORS as exc:
            return gr.update(), gr.update(), actions.refusal(exc)

    def pick_image(project_id: int | None, ids: list[int], evt: gr.SelectData, request: gr.Request) -> Any:
        image_id = ids[evt.index] if evt.index is not None and evt.index < len(ids) else None
        return (image_id, [], *show(services.caller(request), project_id, image_id, None, []))

    gallery.select(pick_image, [shared.project, strip_ids], [shared.image, polygon, *view_out])

    def select_annotation(
        project_id: int | None, image_id: int | None, value: str | None, points: list[list[float]],
        request: gr.Request,
    ) -> tuple[Any, ...]:  # fmt: skip
        caller = services.caller(request)
        ann_id, _ = views.parse_choice(value)
        klass = gr.update()
        if ann_id is not None and image_id is not None and project_id is not None:
            with views.reading(services, caller, project_id) as session:
                names = {ov.id: ov.label for ov in views.overlays(session, image_id)}
            if ann_id in names:
                klass = gr.update(value=names[ann_id])
        return (*show(caller, project_id, image_id, ann_id, points), klass)

    annotations.input(
        select_annotation, [shared.project, shared.image, annotations, polygon], [*view_out, label_class]
    )

    # A new tool starts with nothing selected: pick from the list what a box or polygon should replace.
    # One handler (not a reset, then a redraw): the live redraw holds back while it runs.
    def switch_mode(project_id: Any, image_id: Any, chosen: str, request: gr.Request) -> tuple[Any, ...]:
        return (MODE_HELP[chosen], [], *show(services.caller(request), project_id, image_id, None, []))

    mode.change(switch_mode, [shared.project, shared.image, mode], [mode_help, polygon, *view_out])

    def on_canvas(
        project_id: int | None,
        image_id: int | None,
        value: str | None,
        points: list[list[float]],
        current: str,
        klass: str | None,
        track: str | None,
        evt: gr.EventData,
        request: gr.Request,
    ) -> tuple[Any, ...]:
        caller = services.caller(request)
        selected, version = views.parse_choice(value)
        message = gr.update()
        try:
            if project_id is None or image_id is None:
                raise ValueError("pick an image first")
            g = gesture(evt._data)
            if current == "Segment":
                selected, message = actions.segment_gesture(
                    services, caller, project_id, image_id, klass or "", g, track
                )
            elif current == "Select" and g["kind"] == "point":
                selected = hit(services, caller, project_id, image_id, g["x"], g["y"])
                message = "nothing there" if selected is None else f"selected #{selected}"
            elif current == "Draw box" and g["kind"] == "box":
                selected, message = actions.draw_shape(
                    services, caller, project_id, image_id, klass or "", annotation_id=selected,
                    version=version, box=g["box"], track=track,
                )  # fmt: skip
            elif current == "Polygon" and g["kind"] == "point":
                points = [*points, [g["x"], g["y"]]]
        except actions.ERRORS as exc:
            message = actions.refusal(exc)
        return (points, message, *show(caller, project_id, image_id, selected, points))

    drawn = canvas.select(
        on_canvas,
        [shared.project, shared.image, annotations, polygon, mode, label_class, scrub.track],
        [polygon, shared.status, *view_out],
    ).then(strip_for, strip_in, strip_out)

    def finish_polygon(
        project_id: int | None,
        image_id: int | None,
        value: str | None,
        points: list[list[float]],
        klass: str,
        track: str | None,
        request: gr.Request,
    ) -> tuple[Any, ...]:
        caller = services.caller(request)
        selected, version = views.parse_choice(value)
        try:
            if project_id is None or image_id is None:
                raise ValueError("pick an image first")
            selected, message = actions.draw_shape(
                services, caller, project_id, image_id, klass or "", annotation_id=selected,
                version=version, polygon=points, track=track,
            )  # fmt: skip
            points = []
        except actions.ERRORS as exc:
            message = actions.refusal(exc)
        return (points, message, *show(caller, project_id, image_id, selected, points))

    finished = finish.click(
        finish_polygon,
        [shared.project, shared.image, annotations, polygon, label_class, scrub.track],
        [polygon, shared.status, *view_out],
    ).then(strip_for, strip_in, strip_out)

    def clear_polygon(project_id: Any, image_id: Any, selected: Any, request: gr.Request) -> tuple[Any, ...]:
        return ([], *show(services.caller(request), project_id, image_id, selected, []))

    clear.click(clear_polygon, [shared.project, shared.image, shared.selected], [polygon, *view_out])

    def edit(kind: str) -> Any:
        def run(
            project_id: int | None, image_id: int | None, value: str | None, klass: str | None,
            request: gr.Request,
        ) -> tuple[Any, ...]:  # fmt: skip
            caller = services.caller(request)
            selected, version = views.parse_choice(value)
            try:
                if project_id is None:
                    raise ValueError("pick a project first")
                if kind == "undo":
                    message = actions.undo_last(services, caller, project_id)
                elif selected is None:
                    raise ValueError("select an annotation first (list below the canvas, or the Select tool)")
                elif kind == "relabel":
                    if not (klass or "").strip():
                        raise ValueError("type or pick the new class in the 'Class' box")
                    message = actions.relabel_annotation(
                        services, caller, project_id, selected, version, klass or ""
                    )
                elif kind == "delete":
                    message = actions.delete(services, caller, project_id, selected, version)
                    selected = None
                else:
                    message = actions.set_annotation_status(
                        services, caller, project_id, selected, version, kind
                    )
            except actions.ERRORS as exc:
                message = actions.refusal(exc)
            return (message, *show(caller, project_id, image_id, selected, []))

        return run

    edit_in = [shared.project, shared.image, annotations, label_class]  # the list's value: no race
    edit_out = [shared.status, *view_out]
    edited = [
        button.click(edit(kind), edit_in, edit_out).then(strip_for, strip_in, strip_out)
        for button, kind in (
            (relabel, "relabel"),
            (accept, "accepted"),
            (reject, "rejected"),
            (delete, "delete"),
            (undo, "undo"),
        )
    ]

    def chat(project_id: int | None, message: str, history: list[dict[str, Any]], request: gr.Request) -> Any:
        for messages in run_chat(services, services.caller(request), project_id, message, history):
            yield messages, ""

    for widget in (class_filter, status_filter, unlabelled):
        widget.change(strip_for, strip_in, strip_out)
    for trigger in (chat_in.submit, send.click):
        trigger(chat, [shared.project, chat_in, chatbot], [chatbot, chat_in])
    strip_again = (strip_for, strip_in, strip_out)
    filters = [class_filter, status_filter, unlabelled]
    scrub_again = video.wire(
        services, shared, scrub, show, polygon, view_out, annotations, strip_again, filters
    )
    for changed in (drawn, finished, *edited):  # new tracks, other matching frames
        changed.then(*scrub_again)
    return LabelTab(
        chatbot, canvas, annotations, gallery, strip_ids, strip_note, class_filter, status_filter, unlabelled,
        label_class, show, strip, strip_in, strip_out, view_out, polygon,
    )  # fmt: skip
