"""Annotations: list, create, read, update with optimistic concurrency, delete, and bulk changes,
as thin adapters over :mod:`ops.annotations` (each write is one change batch, so undo works, and
its event reaches the outbox in the same transaction).

A single update names the version it read (body ``version`` or ``If-Match``); a stale one gets 409
with the current version and writes nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from ops import annotations
from ops.annotations import MAX_IDS, NewAnnotation
from server.deps import CallerDep, EnvDep
from server.routes.schema import MAX_INT, Box, Id, Points, errors
from store.models import Annotation, AnnotationStatus

router = APIRouter(prefix="/projects/{project_id}/annotations", tags=["annotations"], responses=errors(428))
IfMatch = Annotated[str | None, Header(description='The version read, e.g. "3" (instead of body version).')]


POLYGON = (
    "An outline as [[x, y], ...] points, or COCO flat lists [[x1, y1, x2, y2, ...], ...] (one per "
    "part); stored as the mask it rasterises to. Give a mask or a polygon, not both."
)


class AnnotationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt or unsupported field is refused, not ignored

    image_id: Id
    category_id: Id
    bbox: Box | None = Field(None, description="[x, y, w, h] in pixels; or give a mask.")
    mask: dict[str, Any] | None = Field(None, description="COCO RLE {size: [h, w], counts}; its bbox wins.")
    polygon: Points | None = Field(None, description=POLYGON)
    score: float | None = Field(None, ge=0, le=1)
    status: AnnotationStatus = AnnotationStatus.proposed
    track_id: Id | None = Field(
        None, description="On a video frame: a track of that video to join (one annotation per frame)."
    )
    new_track: bool = Field(False, description="On a video frame: start a new track with this annotation.")


class AnnotationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Id | None = Field(None, description="The version you read; or send If-Match.")
    category_id: Id | None = None
    bbox: Box | None = None
    mask: dict[str, Any] | None = Field(None, description="A new mask, or null to drop the mask.")
    polygon: Points | None = Field(None, description=POLYGON)
    score: float | None = Field(None, ge=0, le=1)
    status: AnnotationStatus | None = None


class Ids(BaseModel):
    ids: list[Id] = Field(min_length=1, max_length=MAX_IDS)


class Review(Ids):
    status: AnnotationStatus


class Relabel(Ids):
    category_id: Id


def annotation_public(a: Annotation) -> dict[str, Any]:
    return a.model_dump(mode="json")


def _version(body_version: int | None, if_match: str | None) -> int | None:
    if body_version is not None:
        return body_version
    if if_match is None:
        return None
    raw = if_match.strip().removeprefix("W/").strip('"')
    if not (raw.isdigit() and raw.isascii() and int(raw) <= MAX_INT):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"If-Match must be a version number (0..2**31-1), got {if_match!r}"
        )
    return int(raw)


@router.get("")
def list_(
    project_id: Id,
    env: EnvDep,
    caller: CallerDep,
    image_id: Id | None = None,
    category_id: Id | None = None,
    status_: Annotated[AnnotationStatus | None, Query(alias="status")] = None,
    min_score: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_score: Annotated[float | None, Query(ge=0, le=1)] = None,
    tool: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[dict[str, Any]]:
    """Annotations matching every filter, in id order (at most ``limit``)."""
    rows = annotations.list_(
        env,
        caller,
        project_id,
        limit=limit,
        images=[image_id] if image_id is not None else None,
        category_id=category_id,
        status=status_,
        min_score=min_score,
        max_score=max_score,
        tool=tool,
    )
    return [annotation_public(a) for a in rows]


@router.post("", status_code=status.HTTP_201_CREATED)
def create(project_id: Id, body: AnnotationCreate, env: EnvDep, caller: CallerDep) -> dict[str, Any]:
    """Add one annotation; creating it as accepted or rejected needs a reviewer. On a video frame
    it may join a track of that video (``track_id``) or start one (``new_track``), in one change."""
    item = NewAnnotation(
        category_id=body.category_id,
        bbox=body.bbox,
        mask=body.mask,
        polygon=body.polygon,
        score=body.score,
        status=body.status,
        track_id=body.track_id,
        new_track=body.new_track,
    )
    (annotation,) = annotations.create(env, caller, project_id, image_id=body.image_id, items=[item])
    return annotation_public(annotation)


@router.get("/{annotation_id}")
def get(
    project_id: Id, annotation_id: Id, env: EnvDep, caller: CallerDep, response: Response
) -> dict[str, Any]:
    annotation = annotations.get(env, caller, project_id, annotation_id)
    response.headers["ETag"] = f'"{annotation.version}"'
    return annotation_public(annotation)


@router.patch("/{annotation_id}")
def update(
    project_id: Id,
    annotation_id: Id,
    body: AnnotationUpdate,
    env: EnvDep,
    caller: CallerDep,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Change fields of an annotation; requires the version you read (409 if it moved on)."""
    fields = {k: getattr(body, k) for k in body.model_fields_set if k != "version"}
    annotation = annotations.update(
        env, caller, project_id, annotation_id, version=_version(body.version, if_match), **fields
    )
    response.headers["ETag"] = f'"{annotation.version}"'
    return annotation_public(annotation)


@router.delete("/{annotation_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete(
    project_id: Id,
    annotation_id: Id,
    env: EnvDep,
    caller: CallerDep,
    version: Id | None = None,
    if_match: IfMatch = None,
) -> Response:
    """Delete one annotation (undo brings it back); a version, when given, must be current."""
    annotations.delete(env, caller, project_id, annotation_id, version=_version(version, if_match))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/review")
def review(project_id: Id, body: Review, env: EnvDep, caller: CallerDep) -> dict[str, Any]:
    """Accept, reject or re-propose many annotations as one undoable change."""
    changed, batch_id = annotations.set_status(env, caller, project_id, ids=body.ids, status=body.status)
    return {"changed": changed, "batch_id": batch_id}


@router.post("/delete")
def bulk_delete(project_id: Id, body: Ids, env: EnvDep, caller: CallerDep) -> dict[str, Any]:
    """Delete many annotations as one undoable change; unknown ids refuse the whole request."""
    deleted, batch_id = annotations.delete_many(env, caller, project_id, ids=body.ids)
    return {"deleted": deleted, "batch_id": batch_id}


@router.post("/relabel")
def bulk_relabel(project_id: Id, body: Relabel, env: EnvDep, caller: CallerDep) -> dict[str, Any]:
    """Move many annotations to another class as one undoable change."""
    changed, batch_id = annotations.relabel(
        env, caller, project_id, ids=body.ids, category_id=body.category_id
    )
    return {"changed": changed, "batch_id": batch_id}
