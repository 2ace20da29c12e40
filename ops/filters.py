"""Resolving "which annotations" as people say it (a class name, image names or ids, a status, a
score range) into the store's :class:`~store.filters.AnnotationFilter`, once for every surface.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from sqlmodel import Session, select

from ops.errors import Invalid, NotFound
from store.categories import get_category_by_name, list_categories
from store.filters import AnnotationFilter
from store.models import AnnotationStatus, Category, Image

ImageRef = int | str


def find_image(session: Session, project_id: int, ref: ImageRef) -> Image | None:
    """An image of the project named by id or file name, or None."""
    text = str(ref).strip()
    image: Image | None = None
    if text.isdigit() and len(text) < 19:
        image = session.get(Image, int(text))
        if image is not None and image.project_id != project_id:
            image = None
    if image is None:
        image = session.exec(
            select(Image).where(Image.project_id == project_id, Image.file_name == text)
        ).first()
    return image


def image_of(session: Session, project_id: int, ref: ImageRef) -> Image:
    """An image of the project named by id or file name; NotFound lists near matches otherwise."""
    image = find_image(session, project_id, ref)
    if image is None:
        text = str(ref).strip()
        names = session.exec(select(Image.file_name).where(Image.project_id == project_id)).all()
        near = difflib.get_close_matches(text, names, n=5, cutoff=0.4)
        hint = f"; did you mean: {', '.join(near)}" if near else f"; the project has {len(names)} images"
        raise NotFound(f"no image {text!r} in this project{hint}")
    return image


def category_of(session: Session, project_id: int, name: str) -> Category:
    """The project's class called ``name``; NotFound names the classes there are."""
    if not str(name).strip():
        raise Invalid("a class name must not be empty")
    category = get_category_by_name(session, project_id=project_id, name=str(name))
    if category is None:
        have = [c.name for c in list_categories(session, project_id=project_id)]
        near = difflib.get_close_matches(str(name), have, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(near)}?" if near else f"classes: {', '.join(have) or 'none yet'}"
        raise NotFound(f"no class {str(name).strip()!r} in this project; {hint}")
    return category


def category_by_id(session: Session, project_id: int, category_id: int) -> Category:
    category = session.get(Category, category_id)
    if category is None or category.project_id != project_id:
        raise NotFound(f"no category {category_id} in project {project_id}")
    return category


def resolve(
    session: Session,
    project_id: int,
    *,
    label: str | None = None,
    category_id: int | None = None,
    images: Sequence[ImageRef] | None = None,
    status: AnnotationStatus | str | None = None,
    statuses: Sequence[AnnotationStatus | str] | None = None,
    min_score: float | None = None,
    max_score: float | None = None,
    tool: str | None = None,
    job_id: int | None = None,
    ids: Sequence[int] | None = None,
) -> AnnotationFilter:
    """The filter for these criteria; an unknown class or image is NotFound, bad values Invalid."""
    category_ids = None
    if label is not None:
        category_ids = (category_of(session, project_id, label).id or 0,)
    if category_id is not None:
        category_ids = (category_by_id(session, project_id, category_id).id or 0,)
    image_ids = None
    if images:  # an empty list is "no image filter", as people (and models) write it
        image_ids = tuple(image_of(session, project_id, ref).id or 0 for ref in images)
    chosen = list(statuses) if statuses else ([status] if status is not None else None)
    if min_score is not None and max_score is not None and min_score > max_score:
        raise Invalid(f"min_score {min_score} is above max_score {max_score}: nothing could match")
    try:
        return AnnotationFilter(
            ids=tuple(ids) if ids is not None else None,
            image_ids=image_ids,
            category_ids=category_ids,
            statuses=tuple(AnnotationStatus(s) for s in chosen) if chosen else None,
            min_score=min_score,
            max_score=max_score,
            tool=tool,
            job_id=job_id,
        )
    except ValueError as exc:
        raise Invalid(str(exc)) from None
