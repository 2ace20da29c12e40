"""Images of a project: add, find, and the paged, filtered list the UI and the agent browse.

The list is built for 100k images and 1M annotations: class/status filters and per-class counts
read the summaries that SQLite triggers keep (``ImageClass``, ``ClassCount``, the image's status
counts; migration 0002), only a score range probes the annotations (EXISTS on an index), and no
query loads all ids into Python.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, func, text
from sqlmodel import Session, col, select

from store.annotations import parse_status
from store.models import (
    HAS_STATUS,
    UNANNOTATED,
    Annotation,
    AnnotationStatus,
    Category,
    ClassCount,
    Image,
    ImageClass,
)


def add_image(
    session: Session, *, project_id: int, file_name: str, path: str, sha256: str, width: int, height: int
) -> Image:
    """Register an image (its bytes are already stored at ``path``); ValueError on bad or duplicate input."""
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height} for {file_name!r}")
    if len(sha256) != 64:
        raise ValueError(f"sha256 must be 64 hex characters, got {len(sha256)}: {sha256!r}")
    same = get_image_by_sha256(session, project_id=project_id, sha256=sha256)
    if same is not None:
        raise ValueError(f"{file_name!r} has the same content as image {same.id} ({same.file_name!r})")
    if get_image_by_name(session, project_id=project_id, file_name=file_name) is not None:
        raise ValueError(f"project {project_id} already has an image named {file_name!r}")
    image = Image(
        project_id=project_id, file_name=file_name, path=path, sha256=sha256, width=width, height=height
    )
    session.add(image)
    session.commit()
    return image


def get_image(session: Session, *, image_id: int) -> Image | None:
    return session.get(Image, image_id)


def get_image_by_name(session: Session, *, project_id: int, file_name: str) -> Image | None:
    return session.exec(
        select(Image).where(Image.project_id == project_id, Image.file_name == file_name)
    ).first()


def get_image_by_sha256(session: Session, *, project_id: int, sha256: str) -> Image | None:
    return session.exec(select(Image).where(Image.project_id == project_id, Image.sha256 == sha256)).first()


def image_count(session: Session, *, project_id: int) -> int:
    return session.exec(select(func.count()).select_from(Image).where(Image.project_id == project_id)).one()


def list_images(
    session: Session,
    *,
    project_id: int,
    category_id: int | None = None,
    status: str | None = None,
    without_annotations: bool = False,
    min_score: float | None = None,
    max_score: float | None = None,
    video_id: int | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[Image], int]:
    """One page of a project's images in id order, and how many match in total; ``video_id`` keeps
    that video's frames only (the frame scrubber steps through the frames the strip's filter keeps).

    The annotation filters (class, status, score range) select images having at least one
    annotation that matches all of them; ``without_annotations`` turns that around: images with no
    matching annotation (with no filter: images with no annotations at all, the "to do" list).

    Class and status filters read the trigger-kept summaries (``ImageClass``, the image's status
    counts), so they stay fast at 1M annotations; a score range has to probe the annotations. A
    status alone reads its partial index (``ix_image_has_<status>``, migration 0007) in id order.
    """
    if offset < 0 or not 1 <= limit <= 1000:
        raise ValueError(f"need offset >= 0 and 1 <= limit <= 1000, got offset={offset}, limit={limit}")
    state = parse_status(status).value if status is not None else None
    where: list[Any] = [Image.project_id == project_id]
    if video_id is not None:
        where.append(Image.video_id == video_id)
    if min_score is not None or max_score is not None:
        where.append(_annotation_probe(category_id, state, min_score, max_score, negate=without_annotations))
    elif category_id is not None and not without_annotations:
        return _list_by_class(session, project_id, category_id, state, video_id, offset, limit)
    elif category_id is not None:
        match = [ImageClass.image_id == Image.id, ImageClass.category_id == category_id]
        where.append(~exists().where(*match, *([ImageClass.status == state] if state else [])))
    elif state is not None and not without_annotations:
        where.append(text(HAS_STATUS[state]))  # verbatim, so SQLite matches it to the partial index
    elif state is not None:
        where.append(getattr(Image, f"n_{state}") == 0)
    elif without_annotations:
        where.append(text(UNANNOTATED))  # verbatim, so SQLite matches it to the partial index
    total = session.exec(select(func.count()).select_from(Image).where(*where)).one()
    # The page's ids first, then its rows: skipping ``offset`` matches reads index entries only
    # (PostgreSQL fetched every skipped image row: 90k of them deep in the by-status list).
    page = select(Image.id).where(*where).order_by(col(Image.id)).offset(offset).limit(limit)
    rows = session.exec(select(Image).where(col(Image.id).in_(page)).order_by(col(Image.id)))
    return list(rows), total


def _annotation_probe(
    category_id: int | None,
    state: str | None,
    min_score: float | None,
    max_score: float | None,
    *,
    negate: bool,
) -> Any:
    match: list[Any] = [Annotation.image_id == Image.id]
    if category_id is not None:
        match.append(Annotation.category_id == category_id)
    if state is not None:
        match.append(Annotation.status == parse_status(state))
    if min_score is not None:
        match.append(col(Annotation.score) >= min_score)
    if max_score is not None:
        match.append(col(Annotation.score) <= max_score)
    probe = exists().where(*match)
    return ~probe if negate else probe


def _list_by_class(
    session: Session, project_id: int, category_id: int, state: str | None, video_id: int | None,
    offset: int, limit: int,
) -> tuple[list[Image], int]:  # fmt: skip
    # One index range of ix_imageclass_project_category_image, already in image id order.
    ids = select(ImageClass.image_id).where(
        ImageClass.project_id == project_id, ImageClass.category_id == category_id
    )
    if state is not None:
        ids = ids.where(ImageClass.status == state)
    if video_id is not None:
        frames = select(Image.id).where(Image.project_id == project_id, Image.video_id == video_id)
        ids = ids.where(col(ImageClass.image_id).in_(frames))
    ids = ids.group_by(col(ImageClass.image_id))
    total = session.exec(select(func.count()).select_from(ids.subquery())).one()
    page = ids.order_by(col(ImageClass.image_id)).offset(offset).limit(limit)
    rows = session.exec(select(Image).where(col(Image.id).in_(page)).order_by(col(Image.id)))
    return list(rows), total


def _names(session: Session, project_id: int) -> dict[int, str]:
    statement = select(Category.id, Category.name).where(Category.project_id == project_id)
    return dict(session.exec(statement.order_by(col(Category.id))).all())  # type: ignore[arg-type]


def class_counts(session: Session, *, project_id: int, status: str | None = None) -> dict[str, int]:
    """Annotations per class name (every class, zeros included), optionally of one status only."""
    statement = select(ClassCount.category_id, func.sum(ClassCount.n)).where(
        ClassCount.project_id == project_id
    )
    if status is not None:
        statement = statement.where(ClassCount.status == parse_status(status).value)
    counts = dict(session.exec(statement.group_by(col(ClassCount.category_id))).all())
    return {name: int(counts.get(cid) or 0) for cid, name in _names(session, project_id).items()}


def class_status_counts(session: Session, *, project_id: int) -> dict[str, dict[str, int]]:
    """Annotations per class name and status: ``{"car": {"proposed": 3, "accepted": 1, "rejected": 0}}``."""
    names = _names(session, project_id)
    out = {name: dict.fromkeys((s.value for s in AnnotationStatus), 0) for name in names.values()}
    rows = session.exec(
        select(ClassCount.category_id, ClassCount.status, ClassCount.n).where(
            ClassCount.project_id == project_id
        )
    )
    for cid, status, count in rows:
        if cid in names:
            out[names[cid]][status] = count
    return out
