"""The Gradio app: project bar, labeling controls with job progress, and the tabs.

Mount it with ``gr.mount_gradio_app(fastapi_app, build_ui(services), path="/",
allowed_paths=[str(home / "exports")])`` (the export download is served from there).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from store import create_project, list_jobs, new_session
from store.models import JobState
from ui import actions, views
from ui.services import UIServices
from ui.shared import Shared
from ui.tabs import analytics, export, label, review

POLL_S = 2.0


def _choices(services: UIServices) -> list[tuple[str, int]]:
    with new_session(services.engine) as session:
        return views.project_choices(session)


def active_job(services: UIServices, project_id: int | None) -> int | None:
    """The project's newest queued or running job (one the agent may have started)."""
    if project_id is None:
        return None
    with new_session(services.engine) as session:
        for state in (JobState.running, JobState.queued):
            jobs = list_jobs(session, project_id=project_id, state=state, limit=1)
            if jobs:
                return jobs[0].id
    return None


def build_ui(services: UIServices) -> gr.Blocks:
    with gr.Blocks(title="labelwright") as demo:
        gr.Markdown(f"## labelwright · model stack: `{services.stack}`")
        with gr.Row():
            project = gr.Dropdown(_choices(services), label="Project", elem_id="lw-project", scale=2)
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
        timer = gr.Timer(POLL_S, active=False)
        shared = Shared(
            project=gr.State(None),
            image=gr.State(None),
            selected=gr.State(None),
            job=gr.State(None),
            status=status,
            classes=classes,
        )
        with gr.Tabs():
            with gr.Tab("Label", id="label"):
                tab = label.build(services, shared)
            with gr.Tab("Analytics", id="analytics") as analytics_tab:
                load_analytics, analytics_out = analytics.build(services, shared)
            with gr.Tab("Review", id="review") as review_tab:
                load_review, review_out = review.build(services, shared)
            with gr.Tab("Export", id="export"):
                export.build(services, shared)

        strip_in, strip_out, strip = tab.strip_in, tab.strip_out, tab.strip

        def open_project(project_id: int | None) -> tuple[Any, ...]:
            with new_session(services.engine) as session:
                names = views.class_names(session, project_id)
                items, ids, note = views.image_strip(services.home, session, project_id)
            image_id = ids[0] if ids else None
            html, annotations = tab.show(image_id, None, [])
            return (
                project_id,
                image_id,
                None,
                ", ".join(names),
                gr.update(choices=[views.ALL, *names], value=views.ALL),
                gr.update(choices=names, value=names[0] if names else None),
                items,
                ids,
                note,
                html,
                annotations,
            )

        project_out = [
            shared.project, shared.image, shared.selected, classes, tab.class_filter, tab.label_class,
            *strip_out, tab.canvas, tab.annotations,
        ]  # fmt: skip
        project.input(open_project, [project], project_out)

        def make(name: str) -> tuple[Any, ...]:
            try:
                with new_session(services.engine) as session:
                    created = create_project(session, name=name)
            except actions.ERRORS as exc:
                return gr.update(), f"⚠️ {exc}", gr.update()
            return (
                gr.update(choices=_choices(services), value=created.id),
                f"created project {created.name}",
                "",
            )

        create.click(make, [new_name], [project, status, new_name]).then(open_project, [project], project_out)

        def ingest(project_id: int | None, file: str | None) -> tuple[Any, ...]:
            if file is None:
                return gr.update(), ""
            if project_id is None:
                return gr.update(), "⚠️ create or pick a project first, then upload"
            try:
                name = {v: n for n, v in _choices(services)}[project_id]
                _, report = actions.upload_zip(services, name, Path(file))
            except actions.ERRORS as exc:
                return gr.update(), f"⚠️ {exc}"
            return gr.update(), report

        upload.upload(ingest, [shared.project, upload], [upload, ingest_report]).then(
            open_project, [shared.project], project_out
        )

        def save_classes(project_id: int | None, text: str) -> tuple[Any, ...]:
            try:
                if project_id is None:
                    raise ValueError("pick a project first")
                names = actions.save_classes(services, project_id, text)
            except actions.ERRORS as exc:
                return f"⚠️ {exc}", gr.update(), gr.update()
            with new_session(services.engine) as session:
                every = views.class_names(session, project_id)
            return (
                f"classes: {', '.join(names)}",
                gr.update(choices=[views.ALL, *every]),
                gr.update(choices=every, value=names[0]),
            )

        save.click(save_classes, [shared.project, classes], [status, tab.class_filter, tab.label_class])

        def begin(project_id: int | None, text: str, value: float) -> tuple[Any, ...]:
            try:
                if project_id is None:
                    raise ValueError("pick a project first")
                job_id, message = actions.start_label(services, project_id, text, value)
            except actions.ERRORS as exc:
                return None, f"⚠️ {exc}", gr.Timer(active=False)
            return job_id, message, gr.Timer(active=True)

        start.click(begin, [shared.project, classes, threshold], [shared.job, status, timer]).then(
            save_classes, [shared.project, classes], [status, tab.class_filter, tab.label_class]
        )

        def stop(job_id: int | None) -> str:
            if job_id is None:
                return "no job to cancel"
            try:
                services.jobs.cancel(job_id)
            except ValueError as exc:
                return f"⚠️ {exc}"
            return f"cancelling job {job_id} after the image in flight"

        cancel.click(stop, [shared.job], [status])

        def poll(
            job_id: int | None, image_id: int | None, selected: int | None, *filters: Any
        ) -> tuple[Any, ...]:
            if job_id is None:
                return (
                    "",
                    gr.Timer(active=False),
                    gr.update(),
                    gr.update(),
                    gr.update(),
                    gr.update(),
                    gr.update(),
                )
            line, ended = actions.job_progress(services, job_id)
            html, annotations = tab.show(image_id, selected, [])
            return (line, gr.Timer(active=not ended), *strip(*filters), html, annotations)

        timer.tick(
            poll,
            [shared.job, shared.image, shared.selected, *strip_in],
            [progress, timer, *strip_out, tab.canvas, tab.annotations],
        )

        def follow(project_id: int | None, job_id: int | None) -> tuple[Any, ...]:
            found = active_job(services, project_id)
            if found is None or found == job_id:
                return gr.update(), gr.update()
            return found, gr.Timer(active=True)

        tab.chatbot.change(follow, [shared.project, shared.job], [shared.job, timer])
        demo.load(lambda: gr.update(choices=_choices(services)), None, [project])
        analytics_tab.select(load_analytics, [shared.project], analytics_out)
        review_tab.select(load_review, [shared.project], review_out)
    return demo
