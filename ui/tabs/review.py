"""The Review tab: the audit queue (open findings first, ranked), each with its annotation shown,
and the actions a reviewer takes on it. Annotation changes go through history (undo works)."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from store import close_finding, get_finding, get_image, list_findings, new_session
from ui import actions, views
from ui.services import UIServices
from ui.shared import Shared

COLUMNS = ["id", "kind", "severity", "confidence", "annotation", "image", "status", "message"]
RESOLUTIONS = {"accepted": "accepted the annotation", "rejected": "rejected the annotation"}


def findings_table(services: UIServices, project_id: int | None, status: str) -> pd.DataFrame:
    if project_id is None:
        return pd.DataFrame(columns=COLUMNS)
    with new_session(services.engine) as session:
        rows = list_findings(session, project_id=project_id, status=None if status == "all" else status)
    data = [
        [
            f.id,
            f.kind,
            round(f.severity, 2),
            round(f.confidence, 2),
            f.annotation_id,
            f.image_id,
            f.status,
            f.message,
        ]
        for f in rows
    ]
    return pd.DataFrame(data, columns=COLUMNS)


def resolve(services: UIServices, project_id: int, finding_id: int, action: str) -> str:
    """Act on a finding's annotation (accept, reject, delete) or dismiss it; then close the finding."""
    with new_session(services.engine) as session:
        finding = get_finding(session, finding_id=finding_id)
    if finding is None or finding.project_id != project_id:
        raise ValueError(f"finding {finding_id} is not in this project")
    if action != "dismiss":
        if finding.annotation_id is None:
            raise ValueError(f"finding {finding_id} names no annotation; dismiss it instead")
        if action == "delete":
            actions.delete(services, project_id, finding.annotation_id)
        else:
            actions.set_annotation_status(services, project_id, finding.annotation_id, action)
    resolution = {"dismiss": "not a problem", "delete": "deleted the annotation"}.get(action) or RESOLUTIONS[
        action
    ]
    with new_session(services.engine) as session:
        close_finding(session, finding_id=finding_id, resolution=resolution)
    return f"finding {finding_id}: {resolution}"


def preview(services: UIServices, finding_id: int | None) -> Any:
    if finding_id is None:
        return None
    with new_session(services.engine) as session:
        finding = get_finding(session, finding_id=finding_id)
        image = get_image(session, image_id=finding.image_id) if finding and finding.image_id else None
        if image is None:
            return None
        return views.picture(services.home, session, image, finding.annotation_id if finding else None)


def build(services: UIServices, shared: Shared) -> Any:
    current = gr.State(None)
    with gr.Row():
        status = gr.Radio(["open", "closed", "all"], value="open", label="Findings", scale=2)
        refresh = gr.Button("Refresh", size="sm", scale=1, elem_id="lw-review-refresh")
    table = gr.Dataframe(pd.DataFrame(columns=COLUMNS), interactive=False, elem_id="lw-findings")
    with gr.Row():
        picture = gr.Image(label="Finding", interactive=False, height=420)
        with gr.Column():
            chosen = gr.Markdown("Click a finding in the table.", elem_id="lw-finding")
            buttons = {
                "accepted": gr.Button("Accept annotation", elem_id="lw-review-accept"),
                "rejected": gr.Button("Reject annotation", elem_id="lw-review-reject"),
                "delete": gr.Button("Delete annotation", variant="stop", elem_id="lw-review-delete"),
                "dismiss": gr.Button("Not a problem", elem_id="lw-review-dismiss"),
            }

    def choose(frame: pd.DataFrame, evt: gr.SelectData) -> tuple[Any, ...]:
        row = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        finding_id = int(frame.iloc[row]["id"])
        message = str(frame.iloc[row]["message"])
        return finding_id, f"**finding {finding_id}**: {message}", preview(services, finding_id)

    table.select(choose, [table], [current, chosen, picture])

    def load(project_id: int | None, which: str) -> pd.DataFrame:
        return findings_table(services, project_id, which)

    def act(action: str) -> Any:
        def run(project_id: int | None, finding_id: int | None, which: str) -> tuple[Any, ...]:
            try:
                if project_id is None or finding_id is None:
                    raise ValueError("click a finding first")
                message = resolve(services, project_id, finding_id, action)
            except actions.ERRORS as exc:
                message = f"⚠️ {exc}"
            return message, load(project_id, which), preview(services, finding_id)

        return run

    for action, button in buttons.items():
        button.click(act(action), [shared.project, current, status], [shared.status, table, picture])
    for event in (refresh.click, status.change):
        event(load, [shared.project, status], [table])
    return lambda project_id: load(project_id, "open"), [table]
