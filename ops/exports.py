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
            if chosen is Format.coco:
                from store.coco_export import export_coco

                target = out if out is not None else folder / "annotations.json"  # type: ignore[operator]
                report = export_coco(
                    unit.session,
                    project_id=project_id,
                    out_path=target,
                    status=statuses,
                    include_masks=include_masks,
                )
            elif chosen is Format.yolo:
                from store.yolo_export import export_yolo

                target = out if out is not None else folder / "yolo"  # type: ignore[operator]
                report = export_yolo(
                    unit.session, project_id=project_id, out_dir=target, images_root=env.home, status=statuses
                )
            else:
                from store.mask_png_export import export_masks

                target = out if out is not None else folder / "masks"  # type: ignore[operator]
                report = export_masks(unit.session, project_id=project_id, out_dir=target, status=statuses)
        except BaseException:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        return Exported(Path(target), report.to_dict())
