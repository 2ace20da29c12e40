"""Annotations: list, create, read, update with optimistic concurrency, delete, and bulk changes.

Every write is one change batch of the store's history (so undo works) and publishes an event.
A single update names the version it read (body ``version`` or ``If-Match``); a stale one gets 409
with the current version and writes nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Response, status
from pydantic import BaseModel, Field
from sqlmodel import Session

from server.deps import Access, Annotator, BusDep, Reviewer, SessionDep, Viewer, bad_input, not_found
from server.events import Event, EventBus
from store.annotations import (
    create_annotation,
    delete_annotation,
    delete_annotations,
    get_annotation,
    query_annotations,
    relabel,
    set_status,
    update_annotation,
)
from store.history import begin_change
from store.models import Annotation, AnnotationStatus, Role

router = APIRouter(prefix="/projects/{project_id}/annotations", tags=["annotations"])
IfMatch = Annotated[str | None, Header(description='The version read, e.g. "3" (instead of body version).')]
MAX_IDS = 100_000


class AnnotationCreate(BaseModel):
    image_id: int
    category_id: int
    bbox: list[float] | None = Field(None, description="[x, y, w, h] in pixels; or give a mask.")
    mask: dict[str, Any] | None = Field(None, description="COCO RLE {size: [h, w], counts}; its bbox wins.")
    score: float | None = Field(None, ge=0, le=1)
    status: AnnotationStatus = AnnotationStatus.proposed


class AnnotationUpdate(BaseModel):
    version: int | None = Field(None, description="The version you read; or send If-Match.")
    category_id: int | None = None
    bbox: list[float] | None = None
    mask: dict[str, Any] | None = Field(None, description="A new mask, or null to drop the mask.")
    score: float | None = Field(None, ge=0, le=1)
    status: AnnotationStatus | None = None


class Ids(BaseModel):
    ids: list[int] = Field(min_length=1, max_length=MAX_IDS)


class Review(Ids):
    status: AnnotationStatus


class Relabel(Ids):
    category_id: int


def annotation_public(a: Annotation) -> dict[str, Any]:
    return a.model_dump(mode="json")


def _version(body_version: int | None, if_match: str | None) -> int | None:
    if body_version is not None:
        return body_version
    if if_match is None:
        return None
    raw = if_match.strip().removeprefix("W/").strip('"')
    if not raw.isdigit():
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"If-Match must be a version number, got {if_match!r}"
        )
    return int(raw)


def _owned(session: Session, access: Access, annotation_id: int) -> Annotation:
    annotation = get_annotation(session, annotation_id=annotation_id)
    if annotation is None or annotation.project_id != access.project_id:
        raise not_found(f"annotation {annotation_id} in project {access.project_id}")
    return annotation


def _publish(bus: EventBus, access: Access, action: str, ids: list[int], version: int | None = None) -> None:
    bus.publish(Event(access.project_id, "annotation", action, ids, version, access.actor))


@router.get("")
def list_(
    access: Viewer,
    session: SessionDep,
    image_id: int | None = None,
    category_id: int | None = None,
    status_: Annotated[AnnotationStatus | None, Query(alias="status")] = None,
    min_score: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_score: Annotated[float | None, Query(ge=0, le=1)] = None,
    tool: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[dict[str, Any]]:
    """Annotations matching every filter, in id order (at most ``limit``)."""
    rows = query_annotations(
        session,
        project_id=access.project_id,
        image_id=image_id,
        category_id=category_id,
        status=status_.value if status_ else None,
        min_score=min_score,
        max_score=max_score,
        tool=tool,
        limit=limit,
    )
    return [annotation_public(a) for a in rows]


@router.post("", status_code=status.HTTP_201_CREATED)
def create(body: AnnotationCreate, access: Annotator, session: SessionDep, bus: BusDep) -> dict[str, Any]:
    if body.status != AnnotationStatus.proposed:
        access.require(Role.reviewer, f"creating an annotation as {body.status.value}")
    with bad_input():
        batch = begin_change(session, project_id=access.project_id, actor=access.actor, description="create")
        annotation = create_annotation(
            session,
            batch=batch,
            image_id=body.image_id,
            category_id=body.category_id,
            bbox=body.bbox,
            mask=body.mask,
            score=body.score,
            status=body.status.value,
            tool="manual",
            author=access.actor,
        )
    session.commit()
    _publish(bus, access, "created", [annotation.id or 0], annotation.version)
    return annotation_public(annotation)


@router.get("/{annotation_id}")
def get(annotation_id: int, access: Viewer, session: SessionDep, response: Response) -> dict[str, Any]:
    annotation = _owned(session, access, annotation_id)
    response.headers["ETag"] = f'"{annotation.version}"'
    return annotation_public(annotation)


@router.patch("/{annotation_id}")
def update(
    annotation_id: int,
    body: AnnotationUpdate,
    access: Annotator,
    session: SessionDep,
    bus: BusDep,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Change fields of an annotation; requires the version you read (409 if it moved on)."""
    version = _version(body.version, if_match)
    if version is None:
        raise HTTPException(
            status.HTTP_428_PRECONDITION_REQUIRED, "send the version you read (body 'version' or If-Match)"
        )
    fields = {k: getattr(body, k) for k in body.model_fields_set if k != "version"}
    if not fields:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "nothing to update: send at least one field"
        )
    if "status" in fields:
        access.require(Role.reviewer, "changing an annotation's status")
        fields["status"] = fields["status"].value if fields["status"] is not None else None
    _owned(session, access, annotation_id)
    with bad_input():
        batch = begin_change(session, project_id=access.project_id, actor=access.actor, description="edit")
        annotation = update_annotation(
            session, batch=batch, annotation_id=annotation_id, expected_version=version, **fields
        )
    assert annotation is not None
    session.commit()
    _publish(bus, access, "updated", [annotation_id], annotation.version)
    response.headers["ETag"] = f'"{annotation.version}"'
    return annotation_public(annotation)


@router.delete("/{annotation_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete(
    annotation_id: int,
    access: Annotator,
    session: SessionDep,
    bus: BusDep,
    version: int | None = None,
    if_match: IfMatch = None,
) -> Response:
    """Delete one annotation (undo brings it back); a version, when given, must be current."""
    _owned(session, access, annotation_id)
    batch = begin_change(session, project_id=access.project_id, actor=access.actor, description="delete")
    delete_annotation(
        session, batch=batch, annotation_id=annotation_id, expected_version=_version(version, if_match)
    )
    session.commit()
    _publish(bus, access, "deleted", [annotation_id])
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/review")
def review(body: Review, access: Reviewer, session: SessionDep, bus: BusDep) -> dict[str, Any]:
    """Accept, reject or re-propose many annotations as one undoable change."""
    with bad_input():
        batch = begin_change(
            session, project_id=access.project_id, actor=access.actor, description=f"set {body.status.value}"
        )
        changed = set_status(session, batch=batch, ids=body.ids, status=body.status.value)
    session.commit()
    _publish(bus, access, "updated", body.ids)
    return {"changed": changed, "batch_id": batch.id}


@router.post("/delete")
def bulk_delete(body: Ids, access: Annotator, session: SessionDep, bus: BusDep) -> dict[str, Any]:
    """Delete many annotations as one undoable change; unknown ids refuse the whole request."""
    with bad_input():
        batch = begin_change(session, project_id=access.project_id, actor=access.actor, description="delete")
        deleted = delete_annotations(session, batch=batch, ids=body.ids)
    session.commit()
    _publish(bus, access, "deleted", body.ids)
    return {"deleted": deleted, "batch_id": batch.id}


@router.post("/relabel")
def bulk_relabel(body: Relabel, access: Annotator, session: SessionDep, bus: BusDep) -> dict[str, Any]:
    """Move many annotations to another class as one undoable change."""
    with bad_input():
        batch = begin_change(session, project_id=access.project_id, actor=access.actor, description="relabel")
        changed = relabel(session, batch=batch, ids=body.ids, category_id=body.category_id)
    session.commit()
    _publish(bus, access, "updated", body.ids)
    return {"changed": changed, "batch_id": batch.id}
