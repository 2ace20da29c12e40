"""Images: upload (a zip or files), the filtered list, files and thumbnails; thin adapters over
:mod:`ops.images`."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from starlette.datastructures import UploadFile

from ops import images
from ops.caller import Caller
from ops.errors import Invalid
from ops.unit import Env, read
from server.deps import CallerDep, EnvDep
from server.routes.schema import MAX_INT, Id, errors
from server.routes.uploads import refuse_oversized, staging_dir, upload_schema
from store.models import AnnotationStatus, Image

router = APIRouter(prefix="/projects/{project_id}/images", tags=["images"], responses=errors(411))
THUMB_SIDE = 256
MAX_UPLOAD_FILES = 10_000
_UPLOAD_SCHEMA = upload_schema("files", many=True)


def image_public(image: Image) -> dict[str, Any]:
    return {
        "id": image.id,
        "project_id": image.project_id,
        "file_name": image.file_name,
        "sha256": image.sha256,
        "width": image.width,
        "height": image.height,
        "created_at": image.created_at,
        "annotations": {
            "proposed": image.n_proposed,
            "accepted": image.n_accepted,
            "rejected": image.n_rejected,
        },
    }


@router.get("")
def list_(
    project_id: Id,
    env: EnvDep,
    caller: CallerDep,
    class_name: Annotated[
        str | None, Query(alias="class", max_length=1000, description="Only images with this class.")
    ] = None,
    category_id: Id | None = None,
    status_: Annotated[AnnotationStatus | None, Query(alias="status")] = None,
    without_annotations: bool = False,
    min_score: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_score: Annotated[float | None, Query(ge=0, le=1)] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    """A page of images in id order and the total count; annotation filters combine (AND)."""
    rows, total = images.list_(
        env,
        caller,
        project_id,
        class_name=class_name,
        category_id=category_id,
        status=status_,
        without_annotations=without_annotations,
        min_score=min_score,
        max_score=max_score,
        offset=offset,
        limit=limit,
    )
    return {"items": [image_public(i) for i in rows], "total": total, "offset": offset, "limit": limit}


@router.post("", status_code=status.HTTP_201_CREATED, openapi_extra=_UPLOAD_SCHEMA)
async def upload(project_id: Id, request: Request, env: EnvDep, caller: CallerDep) -> dict[str, Any]:
    """Add images: one .zip, or image files, as multipart field ``files``. All or nothing: a
    refused upload (bad zip, zip bomb, over a limit) keeps nothing and says why."""
    refuse_oversized(request)
    await run_in_threadpool(_may_ingest, env, caller, project_id)
    form = await request.form(max_files=MAX_UPLOAD_FILES)
    files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
    if not files:
        await form.close()
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "multipart field 'files' holds no files")
    tmp = staging_dir(env.home, "upload-")
    try:
        source = await run_in_threadpool(_stage, files, tmp)
        report = await run_in_threadpool(
            lambda: images.ingest(env, caller, source=source, project_id=project_id)
        )
    finally:
        await form.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return report.to_dict()


def _may_ingest(env: Env, caller: Caller | None, project_id: Id) -> None:
    """Refuse a caller before reading a large body; ``ops.images.ingest`` checks again (the same
    policy entry) when it writes."""
    with read(env, caller, "image.ingest", project_id):
        pass


def _stage(files: list[UploadFile], tmp: Path) -> Path:
    """Copy the uploaded parts to ``tmp``: the zip itself, or a folder of the files by base name."""
    names = [PurePosixPath((f.filename or "").replace("\\", "/")).name for f in files]
    zips = [n for n in names if n.lower().endswith(".zip")]
    if zips and len(files) > 1:
        raise Invalid(
            f"upload one .zip or image files, not both; got {len(zips)} zip(s) in {len(files)} files"
        )
    folder = tmp / "files"
    folder.mkdir()
    taken: set[str] = set()
    for upload, name in zip(files, names, strict=True):
        name = name if name not in ("", ".", "..") else "upload"
        stem, dot, ext = name.rpartition(".")
        unique, n = name, 1
        while unique in taken:
            n += 1
            unique = f"{stem}_{n}{dot}{ext}" if dot else f"{name}_{n}"
        taken.add(unique)
        target = (tmp / unique) if zips else (folder / unique)
        with target.open("wb") as out:
            upload.file.seek(0)
            shutil.copyfileobj(upload.file, out, 1 << 20)
    return tmp / names[0] if zips else folder


@router.get("/{image_id}")
def get(project_id: Id, image_id: Id, env: EnvDep, caller: CallerDep) -> dict[str, Any]:
    return image_public(images.get(env, caller, project_id, image_id))


@router.get("/{image_id}/file", response_class=FileResponse)
def file(project_id: Id, image_id: Id, env: EnvDep, caller: CallerDep) -> FileResponse:
    """The stored original (EXIF orientation already applied at ingest)."""
    _, path = images.file_path(env, caller, project_id, image_id)
    return FileResponse(path, headers={"Cache-Control": "private, max-age=86400"})


@router.get("/{image_id}/thumbnail", response_class=FileResponse)
def thumbnail(project_id: Id, image_id: Id, env: EnvDep, caller: CallerDep) -> FileResponse:
    """A JPEG at most 256 px on its longer side, made once and kept under ``<home>/thumbs``."""
    image, source = images.file_path(env, caller, project_id, image_id)
    thumb = env.home / "thumbs" / f"{image.sha256}.jpg"
    if not thumb.is_file():
        make_thumbnail(source, thumb)
    return FileResponse(thumb, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})


def make_thumbnail(source: Path, target: Path) -> None:
    from PIL import Image as PILImage

    target.parent.mkdir(parents=True, exist_ok=True)
    with PILImage.open(source) as im:
        im.draft("RGB", (THUMB_SIDE, THUMB_SIDE))  # JPEG: decode at a reduced scale, much faster
        im = im.convert("RGB")
        im.thumbnail((THUMB_SIDE, THUMB_SIDE))
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        im.save(tmp, "JPEG", quality=85)
    os.replace(tmp, target)
