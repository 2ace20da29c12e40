"""Annotation writes, always through a change batch (see store.history); reads are in
:mod:`store.annotation_queries`.

Writes join the session's transaction and flush; the caller commits once per batch, so a
user-visible change is one transaction and rolling back drops it whole.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

from sqlmodel import Session, col, select

from store.errors import StaleWriteError
from store.history import last_actor, record, snapshot
from store.models import Annotation, AnnotationStatus, Category, ChangeBatch, Image, Track, utcnow

UPDATABLE = frozenset(
    {
        "category_id",
        "bbox",
        "mask",
        "score",
        "status",
        "tool",
        "model",
        "prompt",
        "threshold",
        "job_id",
        "agent_run_id",
        "author",
        "track_id",
    }
)
_CHUNK = 900  # ids per IN (...): below SQLite's default limit on bound parameters


def validate_bbox(bbox: Sequence[float], *, width: int, height: int) -> list[float]:
    """Check a COCO ``[x, y, w, h]`` box lies inside a ``width`` x ``height`` image; return it as floats."""
    if len(bbox) != 4:
        raise ValueError(f"bbox must be [x, y, w, h] (4 numbers), got {len(bbox)} values: {list(bbox)!r}")
    try:
        x, y, w, h = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise ValueError(f"bbox must hold 4 numbers, got {list(bbox)!r}") from None
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise ValueError(f"bbox must hold finite numbers, got {list(bbox)!r}")
    if w <= 0 or h <= 0:
        raise ValueError(f"bbox width and height must be > 0, got w={w}, h={h}")
    eps = 1e-3
    if x < -eps or y < -eps or x + w > width + eps or y + h > height + eps:
        raise ValueError(
            f"bbox {[x, y, w, h]} must lie inside the {width}x{height} image (x+w={x + w}, y+h={y + h})"
        )
    return [x, y, w, h]


def _image(session: Session, batch: ChangeBatch, image_id: int) -> Image:
    image = session.get(Image, image_id)
    if image is None or image.project_id != batch.project_id:
        raise ValueError(f"image {image_id} is not an image of project {batch.project_id}")
    return image


def _check_category(session: Session, batch: ChangeBatch, category_id: int) -> None:
    category = session.get(Category, category_id)
    if category is None or category.project_id != batch.project_id:
        raise ValueError(f"category {category_id} is not a category of project {batch.project_id}")


def _check_track(session: Session, image: Image, track_id: int | None, moving: int | None = None) -> None:
    """A track may hold an annotation on ``image``: it is a track of the image's video, and has no
    other annotation on that frame (a track is one object: one annotation per frame). ``moving``
    is the annotation being put there (an update), which does not count against itself."""
    if track_id is None:
        return
    track = session.get(Track, track_id)
    if track is None or track.project_id != image.project_id:
        raise ValueError(f"track {track_id} is not a track of project {image.project_id}")
    if track.video_id != image.video_id:
        where = f"in video {image.video_id}" if image.video_id is not None else "a photo, in no video"
        raise ValueError(
            f"track {track_id} is a track of video {track.video_id}, and image {image.id} is {where}: "
            "a track holds annotations of its own video's frames only"
        )
    taken = session.exec(
        select(Annotation.id).where(
            Annotation.track_id == track_id, Annotation.image_id == image.id, Annotation.id != moving
        )
    ).first()
    if taken is not None:
        raise ValueError(
            f"track {track_id} already has annotation {taken} on frame {image.frame_index} (image "
            f"{image.id}): a track holds one annotation per frame; pick another track, a new one, or "
            "change that annotation instead"
        )


def parse_status(value: Any) -> AnnotationStatus:
    try:
        return AnnotationStatus(value)
    except ValueError:
        raise ValueError(
            f"status must be one of {[s.value for s in AnnotationStatus]}, got {value!r}"
        ) from None


def _score(value: Any, name: str = "score") -> float | None:
    if value is None:
        return None
    score = float(value)
    if not 0.0 <= score <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return score


def _geometry(image: Image, *, bbox: Sequence[float] | None, mask: dict[str, Any] | None) -> dict[str, Any]:
    """The geometry columns from a mask (which wins: bbox, area, segmentation, fidelity) or a bbox."""
    if mask is not None:
        size = list(mask.get("size", []))
        if size != [image.height, image.width]:
            raise ValueError(f"mask size must be [height, width] = {[image.height, image.width]}, got {size}")
        from store.geometry import mask_geometry  # numpy/pycocotools stay out of `import store`
        from store.masks import normalize_rle

        mask = normalize_rle(mask)  # bytes counts would not survive the JSON column
        geometry = mask_geometry(mask)  # ValueError for an empty or malformed mask
        box = validate_bbox(geometry.bbox, width=image.width, height=image.height)
        return {
            "bbox": box,
            "area": float(geometry.area),
            "mask": mask,
            "segmentation": geometry.segmentation,
            "fidelity": float(geometry.fidelity),
        }
    if bbox is None:
        raise ValueError("an annotation needs a bbox or a mask, got neither")
    box = validate_bbox(bbox, width=image.width, height=image.height)
    return {"bbox": box, "area": box[2] * box[3], "mask": None, "segmentation": None, "fidelity": None}


def create_annotation(
    session: Session,
    *,
    batch: ChangeBatch,
    image_id: int,
    category_id: int,
    bbox: Sequence[float] | None = None,
    mask: dict[str, Any] | None = None,
    score: float | None = None,
    status: str = "proposed",
    tool: str = "",
    model: str = "",
    prompt: str = "",
    threshold: float | None = None,
    job_id: int | None = None,
    agent_run_id: int | None = None,
    author: str = "",
    track_id: int | None = None,
) -> Annotation:
    """Add an annotation; with a COCO RLE ``mask`` its bbox/area/segmentation come from the mask.

    ``track_id`` puts it on a track of the image's video that has no annotation on this frame yet
    (ValueError otherwise).
    """
    image = _image(session, batch, image_id)
    _check_category(session, batch, category_id)
    _check_track(session, image, track_id)
    annotation = Annotation(
        project_id=batch.project_id,
        image_id=image_id,
        category_id=category_id,
        **_geometry(image, bbox=bbox, mask=mask),
        score=_score(score),
        status=parse_status(status),
        tool=tool,
        model=model,
        prompt=prompt,
        threshold=_score(threshold, "threshold"),
        job_id=job_id,
        agent_run_id=agent_run_id,
        author=author or batch.actor,
        track_id=track_id,
    )
    session.add(annotation)
    session.flush()
    record(
        session,
        batch=batch,
        annotation_id=annotation.id,
        action="create",
        before=None,  # type: ignore[arg-type]
        after=snapshot(annotation),
    )
    return annotation


def get_annotation(session: Session, *, annotation_id: int) -> Annotation | None:
    return session.get(Annotation, annotation_id)


def _owned(session: Session, batch: ChangeBatch, annotation_id: int) -> Annotation | None:
    annotation = session.get(Annotation, annotation_id)
    return annotation if annotation is not None and annotation.project_id == batch.project_id else None


def _check_version(
    annotation: Annotation, expected_version: int | None, session: Session, action: str
) -> None:
    if expected_version is not None and annotation.version != expected_version:
        raise StaleWriteError(
            annotation_id=annotation.id,  # type: ignore[arg-type]
            expected_version=expected_version,
            actual_version=annotation.version,
            changed_by=last_actor(session, annotation.id),  # type: ignore[arg-type]
            action=action,
        )


def update_annotation(
    session: Session,
    *,
    batch: ChangeBatch,
    annotation_id: int,
    expected_version: int | None = None,
    **fields: Any,
) -> Annotation | None:
    """Change some fields of an annotation and bump its version; None when there is no such row.

    ``expected_version`` is the version the caller read: when the row has moved on since, nothing
    is written and ``StaleWriteError`` says who changed it. Pass ``mask=None`` to drop a mask
    (then a new ``bbox`` may be given); a box cannot be moved under a mask, send the new mask.
    """
    unknown = sorted(set(fields) - UPDATABLE)
    if unknown:
        raise ValueError(f"cannot update {unknown}; updatable fields are {sorted(UPDATABLE)}")
    annotation = _owned(session, batch, annotation_id)
    if annotation is None:
        return None
    _check_version(annotation, expected_version, session, "update")
    if "bbox" in fields and fields.get("mask", annotation.mask) is not None:
        raise ValueError(
            f"annotation {annotation_id} has a mask: send a new mask (its bbox follows) "
            "or mask=None to drop it"
        )
    changes = dict(fields)
    if "mask" in changes or "bbox" in changes:
        image = _image(session, batch, annotation.image_id)
        bbox = changes.pop("bbox", annotation.bbox)
        changes.update(_geometry(image, bbox=bbox, mask=changes.pop("mask", annotation.mask)))
    if "category_id" in changes:
        _check_category(session, batch, changes["category_id"])
    if changes.get("track_id") not in (None, annotation.track_id):
        _check_track(session, _image(session, batch, annotation.image_id), changes["track_id"], annotation_id)
    if "status" in changes:
        changes["status"] = parse_status(changes["status"])
    for name in ("score", "threshold"):
        if name in changes:
            changes[name] = _score(changes[name], name)
    before = snapshot(annotation)
    for name, value in changes.items():
        setattr(annotation, name, value)
    annotation.version += 1
    annotation.updated_at = utcnow()
    session.add(annotation)
    session.flush()
    record(
        session,
        batch=batch,
        annotation_id=annotation_id,
        action="update",
        before=before,
        after=snapshot(annotation),
    )
    return annotation


def delete_annotation(
    session: Session, *, batch: ChangeBatch, annotation_id: int, expected_version: int | None = None
) -> bool:
    """Delete one annotation (undo can bring it back); False when there is no such row."""
    annotation = _owned(session, batch, annotation_id)
    if annotation is None:
        return False
    _check_version(annotation, expected_version, session, "delete")
    record(
        session,
        batch=batch,
        annotation_id=annotation_id,
        action="delete",
        before=snapshot(annotation),
        after=None,
    )
    session.delete(annotation)
    session.flush()
    return True


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _CHUNK):
        yield unique[start : start + _CHUNK]


def _load_all(session: Session, batch: ChangeBatch, ids: Sequence[int]) -> list[Annotation]:
    """The rows for ``ids``, all of them or ValueError naming the missing ones (nothing written)."""
    rows: list[Annotation] = []
    for chunk in _chunks(ids):
        rows.extend(
            session.exec(
                select(Annotation).where(
                    col(Annotation.id).in_(chunk), Annotation.project_id == batch.project_id
                )
            )
        )
    missing = sorted(set(ids) - {a.id for a in rows})
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise ValueError(f"{len(missing)} annotation ids are not in project {batch.project_id}: {shown}")
    return sorted(rows, key=lambda a: a.id or 0)


def delete_annotations(session: Session, *, batch: ChangeBatch, ids: Sequence[int]) -> int:
    """Delete many annotations as one batch; ValueError (nothing deleted) if any id is unknown."""
    rows = _load_all(session, batch, ids)
    for annotation in rows:
        record(
            session,
            batch=batch,
            annotation_id=annotation.id,
            action="delete",  # type: ignore[arg-type]
            before=snapshot(annotation),
            after=None,
        )
        session.delete(annotation)
    session.flush()
    return len(rows)


def _bulk_update(session: Session, batch: ChangeBatch, ids: Sequence[int], name: str, value: Any) -> int:
    rows = _load_all(session, batch, ids)
    now = utcnow()
    changed = 0
    for annotation in rows:
        if getattr(annotation, name) == value:
            continue
        before = snapshot(annotation)
        setattr(annotation, name, value)
        annotation.version += 1
        annotation.updated_at = now
        session.add(annotation)
        record(
            session,
            batch=batch,
            annotation_id=annotation.id,
            action="update",
            before=before,  # type: ignore[arg-type]
            after=snapshot(annotation),
        )
        changed += 1
    session.flush()
    return changed


def set_status(session: Session, *, batch: ChangeBatch, ids: Sequence[int], status: str) -> int:
    """Accept/reject/re-propose many annotations; return how many actually changed."""
    return _bulk_update(session, batch, ids, "status", parse_status(status))


def relabel(session: Session, *, batch: ChangeBatch, ids: Sequence[int], category_id: int) -> int:
    """Move many annotations to another class; return how many actually changed."""
    _check_category(session, batch, category_id)
    return _bulk_update(session, batch, ids, "category_id", category_id)


def assign_track(session: Session, *, batch: ChangeBatch, ids: Sequence[int], track_id: int | None) -> int:
    """Move many annotations onto a track (or off any, None); return how many actually changed.

    Checks nothing about the track: :mod:`store.tracks` is the caller that knows what a track may hold.
    """
    return _bulk_update(session, batch, ids, "track_id", track_id)
