"""Imports: upload an annotations file (COCO, COCO with video fields, MOTChallenge text); a thin
adapter over :func:`ops.imports.import_annotations`.

The file comes as multipart field ``file`` and is staged under ``<home>/tmp`` by its base name
(a MOT file's stem names its video when ``video`` is not given), imported, and removed. Images a
COCO file names must be in the project already (the API takes no images folder; upload them to
``/images`` first); video imports go onto videos the project holds.
"""

from __future__ import annotations

import shutil
from pathlib import PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ops import imports
from ops.caller import Caller
from ops.imports import ImportFormat
from ops.unit import Env, read
from server.deps import CallerDep, EnvDep
from server.routes.schema import Id, Name, errors
from server.routes.uploads import refuse_oversized, staging_dir, upload_schema
from store.models import AnnotationStatus

router = APIRouter(prefix="/projects/{project_id}/imports", tags=["imports"], responses=errors(411, 413))
_UPLOAD_SCHEMA = upload_schema("file")


@router.post("/{fmt}", openapi_extra=_UPLOAD_SCHEMA)
async def import_(
    project_id: Id,
    fmt: ImportFormat,
    request: Request,
    env: EnvDep,
    caller: CallerDep,
    status_: Annotated[
        AnnotationStatus, Query(alias="status", description="Status of the imported annotations.")
    ] = AnnotationStatus.accepted,
    video: Annotated[Name | None, Query(description="MOT: the video (default: the file's stem).")] = None,
    class_name: Annotated[Name | None, Query(alias="class", description="MOT: the boxes' class.")] = None,
    class_map: Annotated[
        list[Name] | None,
        Query(alias="map", description="MOT: NUMBER=NAME or NUMBER=- (leave out), repeatable."),
    ] = None,
) -> dict[str, Any]:
    """Import one annotations file into the project as one undoable change; a video import
    (coco-video, mot) is all or nothing and a refusal names every problem."""
    refuse_oversized(request)
    await run_in_threadpool(_may_import, env, caller, project_id)
    form = await request.form(max_files=1)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        await form.close()
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "multipart field 'file' holds no file")
    tmp = staging_dir(env.home, "import-")
    try:
        name = PurePosixPath((upload.filename or "").replace("\\", "/")).name
        path = tmp / (name if name not in ("", ".", "..") else "upload")
        with path.open("wb") as out:
            upload.file.seek(0)
            shutil.copyfileobj(upload.file, out, 1 << 20)
        report = await run_in_threadpool(
            lambda: imports.import_annotations(
                env,
                caller,
                project_id=project_id,
                path=path,
                fmt=fmt,
                status=status_.value,
                video=video,
                class_name=class_name,
                class_map=imports.parse_class_map(class_map),
            )  # fmt: skip
        )
    finally:
        await form.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return report.to_dict()


def _may_import(env: Env, caller: Caller | None, project_id: int) -> None:
    """Refuse a caller before reading a large body; the operation checks again when it writes."""
    with read(env, caller, "annotation.import", project_id):
        pass
