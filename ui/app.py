"""The Gradio app: project bar, labeling controls with job progress, and the tabs.

Mount it with ``gr.mount_gradio_app(fastapi_app, build_ui(services), path="/",
allowed_paths=[str(home / "exports")], auth_dependency=...)`` (the export download is served from
there). Every handler acts as the person signed in (``gr.Request.username``, resolved by
``services.caller``) through :mod:`ops`; a refusal is a ⚠️ line in the status bar.

Live: each open page polls the project's event outbox every :data:`LIVE_S` seconds (one indexed
query) and redraws the canvas, the annotation list and the image strip only when it moved, so an
edit in another browser, by the agent or by a job shows within a second.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gradio as gr

from ops import jobs
from ops.caller import Caller
from ui import actions, live, views
from ui.services import UIServices
from ui.shared import Shared
from ui.tabs import analytics, export, label, review, stream

LIVE_S = 0.5


def active_job(services: UIServices, caller: Caller | None, project_id: int | None) -> int | None:
    """The project's newest queued or running job (one the agent may have started)."""
    if project_id is None:
        return None
    found = jobs.active(services.env, caller, project_id)
    return found.id if found is not None else None


def build_ui(services: UIServices) -> gr.Blocks:
    with gr.Blocks(title="labelwright") as demo:
        gr.Markdown(f"## labelwright · model stack: `{services.stack}`")
        with gr.Row():
            project = gr.Dropdown([], label="Project", elem_id="lw-project", scale=2)
            new_name = gr.Textbox(label="New project", placeholder="name", elem_id="lw-new-project", scale=2)
            create = gr.Button("Create project", elem_id="lw-create-project", scale=1)
        with gr.Row():
            upload = gr.UploadButton(
                "Upload a zip of images", file_types=[".zip"], elem_id="lw-upload", scale=1
            )
            ingest_report = gr.Markdown(elem_id="lw-ingest-report", container=True)
        with gr.Row():
            classes = gr.Textbox(
                label="Classes (comma-separated)", placeholder="person, bus", elem_id="lw-classes"
            )
            threshold = gr.Slider(0.05, 0.95, value=0.3, step=0.05, label="Threshold", elem_id="lw-threshold")
            with gr.Column(min_width=160):
                save = gr.Button("Save classes", size="sm", elem_id="lw-save-classes")
                start = gr.Button("Label all images", variant="primary", elem_id="lw-label")
                cancel = gr.Button("Cancel job", size="sm", elem_id="lw-cancel")
        progress = gr.Markdown(elem_id="lw-progress")
        status = gr.Markdown(elem_id="lw-status")
        timer = gr.Timer(LIVE_S)
        seen = gr.State(live.Seen())  # what the page last drew from (event id, job progress)
        shared = Shared(
            project=gr.State(None),
            image=gr.State(None),
            selected=gr.State(None),
            job=gr.State(None),
            status=status,
            classes=classes,
        )
        with gr.Tabs() as tabs:
            with gr.Tab("Label", id="label"):
                tab = label.build(services, shared)
            with gr.Tab("Analytics", id="analytics") as analytics_tab:
                load_analytics, analytics_out = analytics.build(services, shared)
            with gr.Tab("Review", id="review") as review_tab:
                load_review, review_out = review.build(services, shared)
            with gr.Tab("Review stream", id="stream") as stream_tab:
                load_stream, stream_out = stream.build(services, shared, tab, tabs)
            with gr.Tab("Export", id="export"):
                export.build(services, shared)

        strip_in, strip_out, strip = tab.strip_in, tab.strip_out, tab.strip

        def open_project(project_id: int | None, request: gr.Request) -> tuple[Any, ...]:
            caller = services.caller(request)
            try:
                if project_id is None:
                    raise ValueError("pick or create a project")
                with views.reading(services, caller, project_id, "project.read") as session:
                    names = views.class_names(session, project_id)
                items = strip(caller, project_id, views.ALL, views.ALL, False)
                ids = items[1]
                job_id = active_job(services, caller, project_id)
                message = gr.update()
            except actions.ERRORS as exc:
                project_id, names, job_id, message = None, [], None, actions.refusal(exc)
                items = strip(caller, None, views.ALL, views.ALL, False)
                ids = []
            image_id = ids[0] if ids else None
            return (
                project_id,
                image_id,
                job_id,
                live.Seen(live.latest(services, project_id)),
                message,
                ", ".join(names),
                gr.update(choices=[views.ALL, *names], value=views.ALL),
                gr.update(choices=names, value=names[0] if names else None),
                *items,
                *tab.show(caller, project_id, image_id, None, []),
            )

        project_out = [
            shared.project, shared.image, shared.job, seen, status, classes, tab.class_filter,
            tab.label_class, *strip_out, *tab.view_out,
        ]  # fmt: skip
        project.input(open_project, [project], project_out)

        def choices(request: gr.Request) -> Any:
            try:
                return gr.update(choices=actions.project_choices(services, services.caller(request)))
            except actions.ERRORS:
                return gr.update(choices=[])

        def make(name: str, request: gr.Request) -> tuple[Any, ...]:
            """Create the project and open it; a refusal only says why (the open project stays)."""
            caller = services.caller(request)
            try:
                project_id, message = actions.create_project(services, caller, name)
            except actions.ERRORS as exc:
                unchanged = [gr.update()] * len(project_out)
                unchanged[project_out.index(status)] = actions.refusal(exc)
                return (gr.update(), gr.update(), *unchanged)
            opened = list(open_project(project_id, request))
            opened[project_out.index(status)] = message
            choices = actions.project_choices(services, caller)
            return (gr.update(choices=choices, value=project_id), "", *opened)

        create.click(make, [new_name], [project, new_name, *project_out])

        def ingest(project_id: int | None, file: str | None, request: gr.Request) -> tuple[Any, ...]:
            if file is None:
                return gr.update(), ""
            try:
                if project_id is None:
                    raise ValueError("create or pick a project first, then upload")
                report = actions.upload_zip(services, services.caller(request), project_id, Path(file))
            except actions.ERRORS as exc:
                return gr.update(), actions.refusal(exc)
            return gr.update(), report

        upload.upload(ingest, [shared.project, upload], [upload, ingest_report]).then(
            open_project, [shared.project], project_out
        )

        def save_classes(project_id: int | None, text: str, request: gr.Request) -> tuple[Any, ...]:
            caller = services.caller(request)
            try:
                if project_id is None:
                    raise ValueError("pick a project first")
                names = actions.save_classes(services, caller, project_id, text)
                with views.reading(services, caller, project_id, "category.read") as session:
                    every = views.class_names(session, project_id)
            except actions.ERRORS as exc:
                return actions.refusal(exc), gr.update(), gr.update()
            return (
                f"classes: {', '.join(names)}",
                gr.update(choices=[views.ALL, *every]),
                gr.update(choices=every, value=names[0]),
            )

        save.click(save_classes, [shared.project, classes], [status, tab.class_filter, tab.label_class])

        def begin(project_id: int | None, text: str, value: float, request: gr.Request) -> tuple[Any, ...]:
            caller = services.caller(request)
            try:
                if project_id is None:
                    raise ValueError("pick a project first")
                job_id, message = actions.start_label(services, caller, project_id, text, value)
            except actions.ERRORS as exc:
                return None, actions.refusal(exc), gr.update()
            return job_id, message, "job queued"

        start.click(begin, [shared.project, classes, threshold], [shared.job, status, progress]).success(
            save_classes, [shared.project, classes], [status, tab.class_filter, tab.label_class]
        )

        def stop(project_id: int | None, job_id: int | None, request: gr.Request) -> str:
            if project_id is None or job_id is None:
                return "no job to cancel"
            try:
                return actions.cancel_job(services, services.caller(request), project_id, job_id)
            except actions.ERRORS as exc:
                return actions.refusal(exc)

        cancel.click(stop, [shared.project, shared.job], [status])

        def follow(
            project_id: int | None, last: live.Seen, job_id: int | None, image_id: int | None,
            selected: int | None, points: list[list[float]], klass: str, state: str, todo: bool,
            request: gr.Request,
        ) -> tuple[Any, ...]:  # fmt: skip
            """Redraw when the project's events moved on (or the job progressed); else send nothing.

            Drawn from the page state the timer sent, so it is dropped when the page acted
            meanwhile (:func:`ui.live.clobbers`); the next tick draws it from the newer state.
            """
            started = time.monotonic()
            keep = [gr.update()] * (len(strip_out) + len(tab.view_out))
            # Dropped or not, a redraw leaves the page as it was: the same Seen and the same job,
            # so the next tick finds the change again (a job that ended meanwhile included).
            unchanged = (last, gr.update(), job_id, gr.update(), *keep)
            if project_id is None:
                return unchanged
            caller = services.background_caller(request)
            try:
                now, line, still = live.look(services, caller, project_id, last, job_id)
                if now == last:
                    return (now, gr.update(), still, gr.update(), *keep)
                drawn = (
                    *strip(caller, project_id, klass, state, todo),
                    *tab.show(caller, project_id, image_id, selected, points),
                )
            except actions.ERRORS as exc:  # e.g. removed from the project meanwhile
                return (last, actions.refusal(exc), None, gr.update(), *keep)
            if live.clobbers(services, demo, request, follow, redrawn, started):
                return unchanged
            return (now, gr.update(), still, gr.update() if line is None else line, *drawn)

        redrawn = {block._id for block in (*strip_out, *tab.view_out)}

        timer.tick(
            follow,
            [shared.project, seen, shared.job, shared.image, shared.selected, tab.polygon, *strip_in[1:]],
            [seen, status, shared.job, progress, *strip_out, *tab.view_out],
            show_progress="hidden",
            concurrency_limit=8,  # pages' ticks are one query each; one page's redraw must not hold up all
        )
        demo.load(choices, None, [project])
        analytics_tab.select(load_analytics, [shared.project], analytics_out)
        review_tab.select(load_review, [shared.project], review_out)
        stream_tab.select(load_stream, [shared.project, stream_out[0]], stream_out, show_progress="hidden")
    return demo
