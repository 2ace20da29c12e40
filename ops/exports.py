"""Exports: COCO (with its fidelity report), YOLO, or mask PNGs, for every surface.

Where the caller names no destination (API, UI, agent) the export goes to a fresh folder under
``<home>/exports`` named by :func:`ops.files.export_dir`, never after the project name as given.
The CLI may name its own ``--out``: that is the person choosing a path on their own machine.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from ops.caller import Caller
from ops.errors import Invalid
from ops.files import export_dir
from ops.unit import Env, read
from store.models import AnnotationStatus, Project


class Format(StrEnum):
    coco = "coco"
    yolo = "yolo"
    masks = "masks"
    coco_video = "coco-video"
    mot = "mot"


@dataclass(frozen=True)
class Exported:
    path: Path  # the COCO file, or the folder (YOLO, masks)
    report: dict[str, Any]


def export(
    env: Env,
    caller: Caller | None,
    project_id: int,
    fmt: Format | str,
    *,
    statuses: list[str] | None = None,
    include_masks: bool = True,
    out: Path | None = None,
) -> Exported:
    """Write the project's annotations (default statuses: accepted and proposed)."""
    try:
        chosen = Format(fmt)
    except ValueError:
        raise Invalid(f"format must be one of {[f.value for f in Format]}, got {fmt!r}") from None
    if statuses is not None:
        bad = sorted(set(statuses) - {s.value for s in AnnotationStatus})
        if bad or not statuses:
            allowed = [s.value for s in AnnotationStatus]
            raise Invalid(f"statuses must be a non-empty subset of {allowed}, got {statuses}")
    with read(env, caller, "export.read", project_id) as unit:
        project = unit.session.get(Project, project_id)
        assert project is not None
        folder = export_dir(env.home, project_id, project.name) if out is None else None
        try:
            target = out if out is not None else folder / DEFAULT_NAMES[chosen]  # type: ignore[operator]
            report = _write(unit.session, chosen, project_id, target, statuses, include_masks, env.home)
        except BaseException:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        return Exported(Path(target), report.to_dict())


DEFAULT_NAMES = {
    Format.coco: "annotations.json",
    Format.yolo: "yolo",
    Format.masks: "masks",
    Format.coco_video: "annotations.video.json",
    Format.mot: "mot",
}


def _write(
    session: Any,
    fmt: Format,
    project_id: int,
    target: Path,
    statuses: list[str] | None,
    masks: bool,
    home: Path,
) -> Any:
    """Run the store's exporter for ``fmt`` (imported lazily: numpy and friends stay out of start-up)."""
    if fmt is Format.coco:
        from store.coco_export import export_coco

        return export_coco(
            session, project_id=project_id, out_path=target, status=statuses, include_masks=masks
        )
    if fmt is Format.coco_video:
        from store.coco_video_export import export_coco_video

        return export_coco_video(
            session, project_id=project_id, out_path=target, status=statuses, include_masks=masks
        )
    if fmt is Format.yolo:  # per image; per frame of each video, with its tracks in videos.json
        from store.yolo_video_export import export_yolo_video

        return export_yolo_video(
            session, project_id=project_id, out_dir=target, images_root=home, status=statuses
        )
    if fmt is Format.mot:
        from store.mot_export import export_mot

        return export_mot(session, project_id=project_id, out_dir=target, status=statuses)
    from store.mask_png_export import export_masks

    return export_masks(session, project_id=project_id, out_dir=target, status=statuses)
