"""Annotations by id: create (one or many), read, edit with the version read, delete, and the
bulk changes by id lists (accept/reject, relabel, delete). Each is one change batch (one undo
step) with one event; a stale version is refused with who changed the row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ops import names
from ops.caller import Caller
from ops.errors import Invalid, NotFound, TooLarge
from ops.filters import category_by_id, resolve
from ops.unit import Env, Unit, change, read
from store import annotation_queries
from store import annotations as repo
from store.categories import ensure_categories
from store.models import Annotation, AnnotationStatus, Category, Image

MAX_IDS = 100_000
UNSET: Any = object()


class PreconditionRequired(Invalid):
    """An edit without the version it was based on (HTTP 428)."""


@dataclass(frozen=True)
class NewAnnotation:
    """One annotation to add: its class by name or id, and a COCO RLE mask, a polygon (see
    :func:`polygon_mask`) or an [x, y, w, h] box."""

    label: str | None = None
    category_id: int | None = None
    mask: dict[str, Any] | None = None
    polygon: Sequence[Sequence[float]] | None = None
    bbox: Sequence[float] | None = None
    score: float | None = None
    status: AnnotationStatus | str = AnnotationStatus.proposed
    tool: str = "manual"
    model: str = ""
    prompt: str = ""
    threshold: float | None = None
    job_id: int | None = None
    track_id: int | None = None  # a track of the image's video (``store.tracks``)
    new_track: bool = False  # start a new track of the image's video with this annotation


NEW_TRACK = "new"


def on_track(track: int | str | None) -> dict[str, Any]:
    """:class:`NewAnnotation`'s track fields from one value, as the UI and the tools take it: None
    (no track), a track id, or ``"new"`` (:data:`NEW_TRACK`: start a new track)."""
    if track is None:
        return {}
    if str(track).strip().lower() == NEW_TRACK:
        return {"new_track": True}
    if isinstance(track, bool) or not str(track).strip().isdigit():
        raise Invalid(f"track must be a track id or {NEW_TRACK!r}, got {track!r}")
    return {"track_id": int(track)}


def _status(value: Any) -> AnnotationStatus:
    try:
        return AnnotationStatus(value)
    except ValueError:
        raise Invalid(f"status must be one of {[s.value for s in AnnotationStatus]}, got {value!r}") from None


def polygon_mask(polygon: Any, image: Image) -> dict[str, Any]:
    """A polygon rasterised as COCO does, as the RLE mask the store keeps.

    Accepts ``[[x, y], ...]`` (one outline as points) or COCO's flat lists ``[[x1, y1, x2, y2,
    ...], ...]`` (one list per part); at most :data:`~store.polygons.MAX_POLYGON_VERTICES`
    vertices and :data:`~store.polygons.MAX_POLYGON_PARTS` parts (:class:`TooLarge` otherwise).
    """
    from store.polygons import check_polygon_limits, check_polygons, rle_from_polygons

    if not isinstance(polygon, list | tuple) or not polygon:
        raise Invalid(
            f"polygon must be [[x, y], ...] or COCO flat lists [[x1, y1, ...], ...], got {polygon!r:.80}"
        )
    parts = [list(p) if isinstance(p, list | tuple) else p for p in polygon]
    if all(isinstance(p, list) and len(p) == 2 for p in parts):
        parts = [[v for point in parts for v in point]]  # points of one outline
    try:
        check_polygon_limits(parts)
    except ValueError as exc:
        raise TooLarge(str(exc)) from None
    try:
        rle = rle_from_polygons(check_polygons(parts), image.height, image.width)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    return _limited(dict(rle))


def _limited(mask: dict[str, Any]) -> dict[str, Any]:
    """``mask`` normalized, or :class:`TooLarge` naming the run-length limit."""
    from store.masks import check_rle_limits, normalize_rle

    try:
        check_rle_limits(mask)
    except ValueError as exc:
        raise TooLarge(str(exc)) from None
    return normalize_rle(mask, max_runs=None)  # checked just above


def _shape(mask: Any, polygon: Any, image: Image) -> dict[str, Any] | None:
    """The mask to write from a mask or a polygon (not both), limits checked."""
    if mask is not None and polygon is not None:
        raise Invalid("give a mask or a polygon, not both")
    if polygon is not None:
        return polygon_mask(polygon, image)
    if mask is not None:
        if not isinstance(mask, dict):
            raise Invalid(f"mask must be a COCO RLE {{size: [h, w], counts}}, got {type(mask).__name__}")
        return _limited(mask)
    return None


def owned(unit: Unit, annotation_id: int) -> Annotation:
    annotation = repo.get_annotation(unit.session, annotation_id=annotation_id)
    if annotation is None or annotation.project_id != unit.project_id:
        raise NotFound(f"no annotation {annotation_id} in project {unit.project_id}")
    return annotation


def add(unit: Unit, image: Image, items: Sequence[NewAnnotation], description: str) -> list[Annotation]:
    """Write ``items`` on ``image`` inside ``unit`` (its batch, its event); new class names are
    created. For operations and job handlers that already hold a unit."""
    if image.project_id != unit.project_id:
        raise NotFound(f"no image {image.id} in project {unit.project_id}")
    labels = [names.class_name(i.label) for i in items if i.category_id is None and i.label is not None]
    by_name = {
        c.name: c.id for c in ensure_categories(unit.session, project_id=unit.project_id, names=labels)
    }
    out: list[Annotation] = []
    for item in items:
        if item.category_id is not None:
            category_id = category_by_id(unit.session, unit.project_id, item.category_id).id
        elif item.label is not None:
            category_id = by_name[names.class_name(item.label)]
        else:
            raise Invalid("an annotation needs a class: give label or category_id")
        if item.new_track and item.track_id is not None:
            raise Invalid(f"give track_id or new_track, not both (got track_id={item.track_id})")
        track_id = _new_track(unit, image, category_id or 0, description) if item.new_track else item.track_id
        out.append(
            repo.create_annotation(
                unit.session,
                batch=unit.batch(description),
                image_id=image.id,  # type: ignore[arg-type]
                category_id=category_id,  # type: ignore[arg-type]
                bbox=item.bbox,
                mask=_shape(item.mask, item.polygon, image),
                score=item.score,
                status=_status(item.status).value,
                tool=item.tool,
                model=item.model,
                prompt=item.prompt,
                threshold=item.threshold,
                job_id=item.job_id,
                track_id=track_id,
                agent_run_id=unit.caller.agent_run_id,
                author=unit.caller.username,
            )
        )
    if out:
        unit.event("annotation", "created", [a.id or 0 for a in out])
    return out


def _new_track(unit: Unit, image: Image, category_id: int, description: str) -> int:
    """A new track of ``image``'s video for the annotation about to be written (same batch: one undo
    step, after which the track is empty and lists nowhere)."""
    from store.tracks import create_track

    if image.video_id is None:
        raise Invalid(
            f"image {image.id} ({image.file_name}) is a photo, not a video frame: only frames go on tracks"
        )
    track = create_track(
        unit.session, batch=unit.batch(description), video_id=image.video_id, category_id=category_id
    )
    return track.id or 0


def create(
    env: Env, caller: Caller | None, project_id: int, *, image_id: int, items: Sequence[NewAnnotation],
    description: str | None = None,
) -> list[Annotation]:  # fmt: skip
    """Add annotations to one image as one change; accepted/rejected ones need a reviewer.

    On a video frame an item may join a track of that video (``track_id``; a track holds one
    annotation per frame) or start a new one (``new_track``), in the same change.
    """
    if not items:
        raise Invalid("nothing to create: give at least one annotation")
    with change(env, caller, "annotation.create", project_id) as unit:
        assert unit.access is not None
        if any(_status(i.status) is not AnnotationStatus.proposed for i in items):
            unit.access.require("annotation.review", "creating an annotation as accepted or rejected")
        if any(i.category_id is None for i in items):
            unit.access.require("category.create", "creating annotations by class name")
        image = unit.session.get(Image, image_id)
        if image is None or image.project_id != project_id:
            raise NotFound(f"no image {image_id} in project {project_id}")
        what = description or f"{items[0].tool}: {len(items)} on {image.file_name}"
        return add(unit, image, items, what)


def get(env: Env, caller: Caller | None, project_id: int, annotation_id: int) -> Annotation:
    with read(env, caller, "annotation.read", project_id) as unit:
        return owned(unit, annotation_id)


def list_(env: Env, caller: Caller | None, project_id: int, *, limit: int = 1000, offset: int = 0,
          **criteria: Any) -> list[Annotation]:  # fmt: skip
    """Annotations matching the criteria of :func:`ops.filters.resolve`, in id order."""
    with read(env, caller, "annotation.read", project_id) as unit:
        where = resolve(unit.session, project_id, **criteria)
        return annotation_queries.query_annotations(
            unit.session, project_id=project_id, where=where, limit=limit, offset=offset
        )


def update(
    env: Env, caller: Caller | None, project_id: int, annotation_id: int, *, version: int | None,
    **fields: Any,
) -> Annotation:  # fmt: skip
    """Change fields of one annotation; ``version`` is the one the caller read (required)."""
    if version is None:
        raise PreconditionRequired("send the version you read (body 'version' or If-Match)")
    if not fields:
        raise Invalid("nothing to update: send at least one field")
    with change(env, caller, "annotation.edit", project_id) as unit:
        assert unit.access is not None
        if "status" in fields:
            unit.access.require("annotation.review", "changing an annotation's status")
            fields["status"] = _status(fields["status"]).value
        current = owned(unit, annotation_id)
        if "polygon" in fields:
            image = unit.session.get(Image, current.image_id)
            assert image is not None
            fields["mask"] = _shape(fields.get("mask"), fields.pop("polygon"), image)
        elif fields.get("mask") is not None:
            fields["mask"] = _limited(fields["mask"]) if isinstance(fields["mask"], dict) else fields["mask"]
        label = fields.pop("label", None)
        if label is not None or "category_id" in fields:
            fields["category_id"] = target_class(
                unit, label, fields.get("category_id"), doing="relabelling to a class by name",
                missing="category_id must be a class id, got null (an annotation always has a class)",
            ).id  # fmt: skip
        what = ", ".join(sorted(fields))
        annotation = repo.update_annotation(
            unit.session,
            batch=unit.batch(f"edit #{annotation_id} ({what})"),
            annotation_id=annotation_id,
            expected_version=version,
            **fields,
        )
        assert annotation is not None
        unit.event("annotation", "updated", [annotation_id], version=annotation.version)
        return annotation


def delete(
    env: Env, caller: Caller | None, project_id: int, annotation_id: int, *, version: int | None = None
) -> None:
    """Delete one annotation (undo brings it back); a version, when given, must be current."""
    with change(env, caller, "annotation.delete", project_id) as unit:
        owned(unit, annotation_id)
        repo.delete_annotation(
            unit.session, batch=unit.batch(f"delete #{annotation_id}"), annotation_id=annotation_id,
            expected_version=version,
        )  # fmt: skip
        unit.event("annotation", "deleted", [annotation_id])


def _ids(ids: Sequence[int]) -> list[int]:
    unique = list(dict.fromkeys(int(i) for i in ids))
    if not unique:
        raise Invalid("give at least one annotation id")
    if len(unique) > MAX_IDS:
        raise Invalid(f"at most {MAX_IDS} ids per request, got {len(unique)}")
    return unique


def set_status(
    env: Env, caller: Caller | None, project_id: int, *, ids: Sequence[int], status: AnnotationStatus | str
) -> tuple[int, int]:
    """Accept, reject or re-propose annotations as one change; returns (changed, batch id)."""
    chosen, wanted = _ids(ids), _status(status)
    with change(env, caller, "annotation.review", project_id) as unit:
        batch = unit.batch(f"set {wanted.value} on {len(chosen)}")
        changed = repo.set_status(unit.session, batch=batch, ids=chosen, status=wanted.value)
        unit.event("annotation", "updated", chosen)
        return changed, batch.id or 0


def target_class(
    unit: Unit, label: str | None, category_id: int | None, *, doing: str, missing: str
) -> Category:
    """The class annotations move to: by name (created if new, which needs ``category.create``:
    ``doing`` says what for) or by id; Invalid(``missing``) when neither is given."""
    if label is not None:
        assert unit.access is not None
        unit.access.require("category.create", doing)
        (target,) = ensure_categories(
            unit.session, project_id=unit.project_id, names=[names.class_name(label)]
        )
        return target
    if category_id is not None:
        return category_by_id(unit.session, unit.project_id, category_id)
    raise Invalid(missing)


def relabel(
    env: Env,
    caller: Caller | None,
    project_id: int,
    *,
    ids: Sequence[int],
    category_id: int | None = None,
    label: str | None = None,
) -> tuple[int, int]:
    """Move annotations to another class (by id, or by name: created if new) as one change."""
    chosen = _ids(ids)
    with change(env, caller, "annotation.edit", project_id) as unit:
        target = target_class(
            unit, label, category_id, doing="relabelling to a class by name",
            missing="relabel needs the target class: category_id or label",
        )  # fmt: skip
        batch = unit.batch(f"relabel {len(chosen)} as {target.name}")
        changed = repo.relabel(unit.session, batch=batch, ids=chosen, category_id=target.id)  # type: ignore[arg-type]
        unit.event("annotation", "updated", chosen)
        return changed, batch.id or 0


def delete_many(env: Env, caller: Caller | None, project_id: int, *, ids: Sequence[int]) -> tuple[int, int]:
    """Delete annotations as one change; unknown ids refuse the whole request."""
    chosen = _ids(ids)
    with change(env, caller, "annotation.delete", project_id) as unit:
        batch = unit.batch(f"delete {len(chosen)}")
        deleted = repo.delete_annotations(unit.session, batch=batch, ids=chosen)
        unit.event("annotation", "deleted", chosen)
        return deleted, batch.id or 0


def count(
    env: Env, caller: Caller | None, project_id: int, *, by: str = "class", **criteria: Any
) -> dict[str, int]:
    """Annotation counts grouped ``by`` class, image or status (largest first), over the criteria
    of :func:`ops.filters.resolve`; one SQL query."""
    from sqlalchemy import func
    from sqlmodel import col, select

    keys = {"class": col(Category.name), "image": col(Image.file_name), "status": col(Annotation.status)}
    if by not in keys:
        raise Invalid(f"by must be one of {sorted(keys)}, got {by!r}")
    key = keys[by]
    with read(env, caller, "annotation.read", project_id) as unit:
        where = resolve(unit.session, project_id, **criteria)
        statement = select(key, func.count()).select_from(Annotation).where(*where.conditions(project_id))
        if by == "class":
            statement = statement.join(Category, col(Category.id) == col(Annotation.category_id))
        elif by == "image":
            statement = statement.join(Image, col(Image.id) == col(Annotation.image_id))
        rows = unit.session.exec(statement.group_by(key).order_by(func.count().desc(), key)).all()
        return {str(getattr(k, "value", k)): int(n) for k, n in rows}
