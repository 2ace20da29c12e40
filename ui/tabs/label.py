"""The Label tab: chat beside the canvas, the annotation editor, and the filtered image strip."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from store import get_annotation, new_session
from ui import actions, views
from ui.canvas import gesture, make_canvas
from ui.services import UIServices
from ui.shared import Shared
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
    show: Callable[..., tuple[Any, Any]]  # (image, selected, polygon) -> canvas html, annotation list
    strip: Callable[..., tuple[Any, Any, Any]]  # (project, class, status, unlabelled) -> strip_out
    strip_in: list[Any]
    strip_out: list[Any]


def hit(services: UIServices, image_id: int, x: float, y: float) -> int | None:
    """The smallest annotation under the point (mask where there is one, else box)."""
    from store.masks import mask_from_rle

    with new_session(services.engine) as session:
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

    def strip(project_id: int | None, klass: str, state: str, todo: bool) -> tuple[Any, Any, Any]:
        with new_session(services.engine) as session:
            return views.image_strip(
                services.home, session, project_id, class_name=klass, status=state, unlabelled=todo
            )

    view_in = [shared.image, shared.selected, polygon]
    view_out = [canvas, annotations]

    def show(image_id: int | None, selected: int | None, points: list[list[float]]) -> tuple[Any, Any]:
        with new_session(services.engine) as session:
            html = views.canvas(services.home, session, image_id, selected, points)
            choices = views.annotation_choices(session, image_id)
        return html, gr.update(
            choices=choices, value=selected if selected in dict(choices).values() else None
        )

    def pick_image(ids: list[int], evt: gr.SelectData) -> tuple[Any, ...]:
        image_id = ids[evt.index] if evt.index is not None and evt.index < len(ids) else None
        return (image_id, None, [], *show(image_id, None, []))

    gallery.select(pick_image, [strip_ids], [shared.image, shared.selected, polygon, *view_out])

    def select_annotation(
        image_id: int | None, ann_id: int | None, points: list[list[float]]
    ) -> tuple[Any, ...]:
        klass = gr.update()
        if ann_id is not None:
            with new_session(services.engine) as session:
                ann = get_annotation(session, annotation_id=ann_id)
                names = {ov.id: ov.label for ov in views.overlays(session, image_id)} if image_id else {}
            if ann is not None and ann_id in names:
                klass = gr.update(value=names[ann_id])
        html, _ = show(image_id, ann_id, points)
        return ann_id, html, klass

    annotations.input(
        select_annotation, [shared.image, annotations, polygon], [shared.selected, canvas, label_class]
    )
    # A new tool starts with nothing selected: pick from the list what a box or polygon should replace.
    mode.change(lambda m: (MODE_HELP[m], [], None), [mode], [mode_help, polygon, shared.selected]).then(
        show, view_in, view_out
    )

    def on_canvas(
        project_id: int | None,
        image_id: int | None,
        selected: int | None,
        points: list[list[float]],
        current: str,
        klass: str | None,
        evt: gr.EventData,
    ) -> tuple[Any, ...]:
        message = gr.update()
        try:
            if project_id is None or image_id is None:
                raise ValueError("pick an image first")
            g = gesture(evt._data)
            if current == "Segment":
                selected, message = actions.segment_gesture(services, project_id, image_id, klass or "", g)
            elif current == "Select" and g["kind"] == "point":
                selected = hit(services, image_id, g["x"], g["y"])
                message = "nothing there" if selected is None else f"selected #{selected}"
            elif current == "Draw box" and g["kind"] == "box":
                selected, message = actions.draw_shape(
                    services, project_id, image_id, klass or "", annotation_id=selected, box=g["box"]
                )
            elif current == "Polygon" and g["kind"] == "point":
                points = [*points, [g["x"], g["y"]]]
        except actions.ERRORS as exc:
            message = f"⚠️ {exc}"
        return (selected, points, message, *show(image_id, selected, points))

    canvas.select(
        on_canvas,
        [shared.project, shared.image, shared.selected, polygon, mode, label_class],
        [shared.selected, polygon, shared.status, *view_out],
    ).then(strip, strip_in, strip_out)

    def finish_polygon(
        project_id: int | None,
        image_id: int | None,
        selected: int | None,
        points: list[list[float]],
        klass: str,
    ) -> tuple[Any, ...]:
        try:
            if project_id is None or image_id is None:
                raise ValueError("pick an image first")
            selected, message = actions.draw_shape(
                services, project_id, image_id, klass or "", annotation_id=selected, polygon=points
            )
            points = []
        except actions.ERRORS as exc:
            message = f"⚠️ {exc}"
        return (selected, points, message, *show(image_id, selected, points))

    finish.click(
        finish_polygon,
        [shared.project, shared.image, shared.selected, polygon, label_class],
        [shared.selected, polygon, shared.status, *view_out],
    ).then(strip, strip_in, strip_out)
    clear.click(lambda: [], None, [polygon]).then(show, view_in, view_out)

    def edit(kind: str) -> Any:
        def run(
            project_id: int | None, image_id: int | None, selected: int | None, klass: str | None
        ) -> tuple[Any, ...]:
            try:
                if project_id is None:
                    raise ValueError("pick a project first")
                if kind == "undo":
                    message = actions.undo_last(services, project_id)
                elif selected is None:
                    raise ValueError("select an annotation first (list below the canvas, or the Select tool)")
                elif kind == "relabel":
                    if not (klass or "").strip():
                        raise ValueError("type or pick the new class in the 'Class' box")
                    message = actions.relabel_annotation(services, project_id, selected, klass or "")
                elif kind == "delete":
                    message = actions.delete(services, project_id, selected)
                    selected = None
                else:
                    message = actions.set_annotation_status(services, project_id, selected, kind)
            except actions.ERRORS as exc:
                message = f"⚠️ {exc}"
            return (selected, message, *show(image_id, selected, []))

        return run

    edit_in = [shared.project, shared.image, annotations, label_class]  # the list's value: no race
    edit_out = [shared.selected, shared.status, *view_out]
    for button, kind in (
        (relabel, "relabel"),
        (accept, "accepted"),
        (reject, "rejected"),
        (delete, "delete"),
        (undo, "undo"),
    ):
        button.click(edit(kind), edit_in, edit_out).then(strip, strip_in, strip_out)

    def chat(project_id: int | None, message: str, history: list[dict[str, Any]]) -> Any:
        for messages in run_chat(services, project_id, message, history):
            yield messages, ""

    for widget in (class_filter, status_filter, unlabelled):
        widget.change(strip, strip_in, strip_out)
    for trigger in (chat_in.submit, send.click):
        trigger(chat, [shared.project, chat_in, chatbot], [chatbot, chat_in])
    return LabelTab(
        chatbot, canvas, annotations, gallery, strip_ids, strip_note, class_filter, status_filter, unlabelled,
        label_class, show, strip, strip_in, strip_out,
    )  # fmt: skip
