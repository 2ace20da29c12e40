"""The Export tab: COCO, YOLO or mask PNGs through :func:`ops.exports.export`, with its report and
a download. The operation picks the folder (``<home>/exports/<id>-<safe name>-<time>/``, never the
project name as given) and keeps it there; folder formats are zipped beside it for the download."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import gradio as gr

from ops import exports
from ops.caller import Caller
from ui import actions
from ui.services import UIServices
from ui.shared import Shared
from ui.tabs import imports

FORMATS = {"COCO": exports.Format.coco, "YOLO": exports.Format.yolo, "Mask PNGs": exports.Format.masks}


def export(
    services: UIServices, caller: Caller | None, project_id: int, fmt: str, statuses: list[str],
    include_masks: bool = True,
) -> tuple[Path, dict[str, Any]]:  # fmt: skip
    """Run one export; returns the file to download (a zip for folder formats) and its report."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {list(FORMATS)}, got {fmt!r}")
    done = exports.export(
        services.env, caller, project_id, FORMATS[fmt], statuses=list(statuses), include_masks=include_masks
    )
    if done.path.is_dir():
        return Path(shutil.make_archive(str(done.path), "zip", root_dir=done.path)), done.report
    return done.path, done.report


def build(services: UIServices, shared: Shared) -> None:
    with gr.Row():
        fmt = gr.Radio(list(FORMATS), value="COCO", label="Format", elem_id="lw-export-format")
        statuses = gr.CheckboxGroup(
            ["accepted", "proposed", "rejected"], value=["accepted", "proposed"], label="Statuses"
        )
        masks = gr.Checkbox(value=True, label="Masks (COCO: polygons/RLE; off: boxes only)")
    run = gr.Button("Export", variant="primary", elem_id="lw-export")
    download = gr.File(label="Download", elem_id="lw-export-file")
    report = gr.JSON(label="Report (fidelity: how well polygons match the masks)", elem_id="lw-export-report")

    def go(
        project_id: int | None, which: str, chosen: list[str], with_masks: bool, request: gr.Request
    ) -> tuple[Any, ...]:
        try:
            if project_id is None:
                raise ValueError("pick a project first")
            path, data = export(services, services.caller(request), project_id, which, chosen, with_masks)
        except actions.ERRORS as exc:
            return actions.refusal(exc), None, None
        return f"exported {which} to `{path}`", str(path), data

    run.click(go, [shared.project, fmt, statuses, masks], [shared.status, download, report])
    imports.build(services, shared)
