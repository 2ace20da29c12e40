"""The Review tab: the audit queue (open findings first, ranked), each with its annotation shown,
and the actions a reviewer takes on it. Each action is :func:`ops.findings.resolve`: the change to
the annotation and the closing of the finding are one change (one undo step, one event)."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from ops import findings
from ops.caller import Caller
from store import get_finding, get_image
from ui import actions, views
from ui.services import UIServices
from ui.shared import Shared

COLUMNS = ["id", "kind", "severity", "confidence", "annotation", "image", "status", "message"]
ACTIONS = {"accepted": "accept", "rejected": "reject", "delete": "delete", "dismiss": "dismiss"}


def findings_table(
    services: UIServices, caller: Caller | None, project_id: int | None, status: str
) -> pd.DataFrame:
    if project_id is None:
        return pd.DataFrame(columns=COLUMNS)
    rows = findings.list_(services.env, caller, project_id, status=None if status == "all" else status)
    data = [
        [f.id, f.kind, round(f.severity, 2), round(f.confidence, 2), f.annotation_id, f.image_id, f.status,
         f.message]
        for f in rows
    ]  # fmt: skip
    return pd.DataFrame(data, columns=COLUMNS)


def resolve(
    services: UIServices, caller: Caller | None, project_id: int, finding_id: int, action: str
) -> str:
    """Act on a finding's annotation (accept, reject, delete) or dismiss it, closing the finding."""
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {sorted(ACTIONS)}, got {action!r}")
    closed = findings.resolve(services.env, caller, project_id, finding_id, ACTIONS[action])  # type: ignore[arg-type]
    return f"finding {finding_id}: {closed.finding.resolution}"


def preview(services: UIServices, caller: Caller | None, project_id: int, finding_id: int | None) -> Any:
    if finding_id is None:
        return None
    with views.reading(services, caller, project_id, "finding.read") as session:
        finding = get_finding(session, finding_id=finding_id)
        if finding is None or finding.project_id != project_id or finding.image_id is None:
            return None
        image = get_image(session, image_id=finding.image_id)
        if image is None:
            return None
        return views.picture(services.home, session, image, finding.annotation_id)


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

    def choose(
        project_id: int, frame: pd.DataFrame, evt: gr.SelectData, request: gr.Request
    ) -> tuple[Any, ...]:
        row = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        finding_id = int(frame.iloc[row]["id"])
        message = str(frame.iloc[row]["message"])
        shown = preview(services, services.caller(request), project_id, finding_id)
        return finding_id, f"**finding {finding_id}**: {message}", shown

    table.select(choose, [shared.project, table], [current, chosen, picture])

    def load(project_id: int | None, which: str, request: gr.Request) -> Any:
        try:
            return findings_table(services, services.caller(request), project_id, which)
        except actions.ERRORS:
            return pd.DataFrame(columns=COLUMNS)

    def act(action: str) -> Any:
        def run(
            project_id: int | None, finding_id: int | None, which: str, request: gr.Request
        ) -> tuple[Any, ...]:
            caller = services.caller(request)
            try:
                if project_id is None or finding_id is None:
                    raise ValueError("click a finding first")
                message = resolve(services, caller, project_id, finding_id, action)
                shown = preview(services, caller, project_id, finding_id)
            except actions.ERRORS as exc:
                message, shown = actions.refusal(exc), gr.update()
            return message, load(project_id, which, request), shown

        return run

    for action, button in buttons.items():
        button.click(act(action), [shared.project, current, status], [shared.status, table, picture])
    for event in (refresh.click, status.change):
        event(load, [shared.project, status], [table])

    def first_load(project_id: int | None, request: gr.Request) -> Any:
        return load(project_id, "open", request)

    return first_load, [table]
