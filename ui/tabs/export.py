"""The Export tab: COCO, YOLO or mask PNGs through the store's exporters, with their report and a
download. Exports are written under ``<home>/exports/<project>-<time>/`` and kept there."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import gradio as gr

from store import get_project, new_session
from store.coco_export import export_coco
from store.mask_png_export import export_masks
from store.yolo_export import export_yolo
from ui import actions
from ui.services import UIServices
from ui.shared import Shared

FORMATS = ["COCO", "YOLO", "Mask PNGs"]


def export(
    services: UIServices, project_id: int, fmt: str, statuses: list[str], include_masks: bool = True
) -> tuple[Path, dict[str, Any]]:
    """Run one exporter; returns the file to download (a zip for folder formats) and its report."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    if not statuses:
        raise ValueError("tick at least one status to export (accepted, proposed, rejected)")
    with new_session(services.engine) as session:
        project = get_project(session, project_id=project_id)
        if project is None:
            raise ValueError(f"no project with id {project_id}")
        stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in project.name)
        out = services.home / "exports" / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
        if fmt == "COCO":
            target = out / "annotations.json"
            report = export_coco(
                session, project_id=project_id, out_path=target, status=statuses, include_masks=include_masks
            )
            return target, report.to_dict()
        if fmt == "YOLO":
            report = export_yolo(
                session,
                project_id=project_id,
                out_dir=out / "yolo",
                images_root=services.home,
                status=statuses,
            )
            folder = out / "yolo"
        else:
            report = export_masks(session, project_id=project_id, out_dir=out / "masks", status=statuses)
            folder = out / "masks"
    archive = shutil.make_archive(str(folder), "zip", root_dir=folder)
    return Path(archive), report.to_dict()


def build(services: UIServices, shared: Shared) -> None:
    with gr.Row():
        fmt = gr.Radio(FORMATS, value="COCO", label="Format", elem_id="lw-export-format")
        statuses = gr.CheckboxGroup(
            ["accepted", "proposed", "rejected"], value=["accepted", "proposed"], label="Statuses"
        )
        masks = gr.Checkbox(value=True, label="Masks (COCO: polygons/RLE; off: boxes only)")
    run = gr.Button("Export", variant="primary", elem_id="lw-export")
    download = gr.File(label="Download", elem_id="lw-export-file")
    report = gr.JSON(label="Report (fidelity: how well polygons match the masks)", elem_id="lw-export-report")

    def go(project_id: int | None, which: str, chosen: list[str], with_masks: bool) -> tuple[Any, ...]:
        try:
            if project_id is None:
                raise ValueError("pick a project first")
            path, data = export(services, project_id, which, chosen, with_masks)
        except actions.ERRORS as exc:
            return f"⚠️ {exc}", None, None
        return f"exported {which} to `{path}`", str(path), data

    run.click(go, [shared.project, fmt, statuses, masks], [shared.status, download, report])
