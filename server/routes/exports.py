"""Exports as a zip download: COCO (with its fidelity report), YOLO, or mask PNGs.

Each zip holds the format's files and ``report.json`` (what the exporter reported). The export is
written to a temporary folder in the data home and removed once the download has been sent.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from server.deps import SessionDep, Viewer, bad_input
from store.models import AnnotationStatus
from store.projects import get_project

router = APIRouter(prefix="/projects/{project_id}/exports", tags=["exports"])


class ExportFormat(StrEnum):
    coco = "coco"
    yolo = "yolo"
    masks = "masks"


@router.get("/{fmt}", response_class=FileResponse)
def export(
    fmt: ExportFormat,
    request: Request,
    access: Viewer,
    session: SessionDep,
    status: Annotated[
        list[AnnotationStatus] | None, Query(description="Statuses to export (repeatable).")
    ] = None,
) -> FileResponse:
    """Download the project's annotations; default statuses: accepted and proposed."""
    home: Path = request.app.state.settings.home
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="export-", dir=home / "tmp"))
    statuses = [s.value for s in status] if status else None
    project = get_project(session, project_id=access.project_id)
    assert project is not None
    try:
        with bad_input():
            report = _write(session, fmt, access.project_id, work / "out", statuses, home)
        (work / "out" / "report.json").write_text(json.dumps(report, indent=2, default=str))
        archive = work / "export.zip"
        _zip_folder(work / "out", archive)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    name = f"{project.name}-{fmt.value}.zip".replace("/", "_").replace('"', "")
    return FileResponse(
        archive,
        media_type="application/zip",
        filename=name,
        background=BackgroundTask(shutil.rmtree, work, ignore_errors=True),
    )


def _write(
    session: Any, fmt: ExportFormat, project_id: int, out: Path, status: list[str] | None, home: Path
) -> Any:
    out.mkdir(parents=True)
    if fmt is ExportFormat.coco:
        from store.coco_export import export_coco

        report = export_coco(session, project_id=project_id, out_path=out / "annotations.json", status=status)
    elif fmt is ExportFormat.yolo:
        from store.yolo_export import export_yolo

        report = export_yolo(session, project_id=project_id, out_dir=out, images_root=home, status=status)
    else:
        from store.mask_png_export import export_masks

        report = export_masks(session, project_id=project_id, out_dir=out, status=status)
    data = report.to_dict()
    return {
        k: (Path(v).name if k.endswith(("_path", "out_dir", "legend")) and isinstance(v, str) else v)
        for k, v in data.items()
    }


def _zip_folder(folder: Path, archive: Path) -> None:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
