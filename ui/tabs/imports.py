"""Import annotations from the Export tab: a COCO file (images, or a video's frames as images),
COCO with video fields, or MOTChallenge text, through :func:`ops.imports.import_annotations`
(the CLI's and the API's operation: same checks, one undoable change, video imports all or
nothing). Images a COCO file names must be in the project already (upload them first)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from ops import imports
from ops.caller import Caller
from ui import actions
from ui.services import UIServices
from ui.shared import Shared

FORMATS = {
    "COCO": imports.ImportFormat.coco,
    "COCO video (tracks)": imports.ImportFormat.coco_video,
    "MOTChallenge (tracks)": imports.ImportFormat.mot,
}


def import_file(
    services: UIServices, caller: Caller | None, project_id: int, path: Path, fmt: str, *,
    status: str = "accepted", video: str = "", class_name: str = "", class_map: str = "",
) -> dict[str, Any]:  # fmt: skip
    """Run one import; ``class_map`` is ``"1=pedestrian, 8=-"``. Returns the report."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {list(FORMATS)}, got {fmt!r}")
    pairs = [p.strip() for p in class_map.split(",") if p.strip()]
    report = imports.import_annotations(
        services.env, caller, project_id=project_id, path=Path(path), fmt=FORMATS[fmt], status=status,
        video=video.strip() or None, class_name=class_name.strip() or None,
        class_map=imports.parse_class_map(pairs),
    )  # fmt: skip
    return report.to_dict()


def build(services: UIServices, shared: Shared) -> None:
    with gr.Accordion("Import annotations", open=False, elem_id="lw-import-box"):
        with gr.Row():
            upload = gr.File(label="COCO JSON or MOT .txt", type="filepath", elem_id="lw-import-file")
            fmt = gr.Radio(list(FORMATS), value="COCO", label="Format", elem_id="lw-import-format")
            status = gr.Radio(["accepted", "proposed"], value="accepted", label="Status")
        with gr.Row():
            video = gr.Textbox(label="MOT: video (default: the file's name)", max_lines=1)
            class_name = gr.Textbox(label="MOT: class of the boxes", max_lines=1)
            class_map = gr.Textbox(label="MOT: class numbers (1=pedestrian, 8=-)", max_lines=1)
        run = gr.Button("Import", elem_id="lw-import")
        report = gr.JSON(label="Import report", elem_id="lw-import-report")

    def go(
        project_id: int | None, path: str | None, which: str, state: str, clip: str, name: str, mapping: str,
        request: gr.Request,
    ) -> tuple[Any, ...]:  # fmt: skip
        try:
            if project_id is None:
                raise ValueError("pick a project first")
            if not path:
                raise ValueError("choose a file to import first")
            data = import_file(
                services, services.caller(request), project_id, Path(path), which, status=state, video=clip,
                class_name=name, class_map=mapping,
            )  # fmt: skip
        except actions.ERRORS as exc:
            return actions.refusal(exc), None
        return f"imported {data['imported']} annotations from {Path(path).name}", data

    run.click(
        go, [shared.project, upload, fmt, status, video, class_name, class_map], [shared.status, report]
    )
