"""Exports as a zip download: COCO (with its fidelity report), YOLO, or mask PNGs.

The export is :func:`ops.exports.export` into a fresh folder under ``<home>/exports`` (named by
the project's id and a slug, never by its name as given); the route zips it with ``report.json``
(what the exporter reported) and removes the folder once the download has been sent.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from ops import exports
from ops.exports import Format
from server.deps import CallerDep, EnvDep
from store.models import AnnotationStatus

router = APIRouter(prefix="/projects/{project_id}/exports", tags=["exports"])


@router.get("/{fmt}", response_class=FileResponse)
def export(
    project_id: int,
    fmt: Format,
    env: EnvDep,
    caller: CallerDep,
    status: Annotated[
        list[AnnotationStatus] | None, Query(description="Statuses to export (repeatable).")
    ] = None,
) -> FileResponse:
    """Download the project's annotations; default statuses: accepted and proposed."""
    statuses = [s.value for s in status] if status else None
    done = exports.export(env, caller, project_id, fmt, statuses=statuses)
    root = done.path if done.path.is_dir() else done.path.parent
    folder = done.path.parent  # the export's own folder under <home>/exports
    archive = folder / "download.zip"
    try:
        report = _relative(done.report)
        (root / "report.json").write_text(json.dumps(report, indent=2, default=str))
        _zip_folder(root, archive)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(
        archive,
        media_type="application/zip",
        filename=f"{folder.name}-{Format(fmt).value}.zip",
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )


def _relative(report: dict[str, Any]) -> dict[str, Any]:
    """The report with file paths as names inside the zip (no server paths in a download)."""
    return {
        k: (Path(v).name if k.endswith(("_path", "out_dir", "legend")) and isinstance(v, str) else v)
        for k, v in report.items()
    }


def _zip_folder(folder: Path, archive: Path) -> None:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path != archive:
                zf.write(path, path.relative_to(folder).as_posix())
