"""Reading annotations: a project's annotations by filter, and the ids a filter selects."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from store.annotations import parse_status
from store.filters import AnnotationFilter
from store.models import Annotation


def filter_of(
    *,
    image_id: int | None = None,
    category_id: int | None = None,
    status: str | None = None,
    min_score: float | None = None,
    max_score: float | None = None,
    tool: str | None = None,
) -> AnnotationFilter:
    """The :class:`AnnotationFilter` of the single-valued keyword filters."""
    return AnnotationFilter(
        image_ids=None if image_id is None else (image_id,),
        category_ids=None if category_id is None else (category_id,),
        statuses=None if status is None else (parse_status(status),),
        min_score=min_score,
        max_score=max_score,
        tool=tool,
    )


def query_annotations(
    session: Session,
    *,
    project_id: int,
    where: AnnotationFilter | None = None,
    limit: int | None = None,
    offset: int = 0,
    **filters: Any,
) -> list[Annotation]:
    """Annotations of a project matching ``where`` (or the keyword filters of :func:`filter_of`),
    in id order."""
    flt = where if where is not None else filter_of(**filters)
    statement = select(Annotation).where(*flt.conditions(project_id)).order_by(col(Annotation.id))
    if offset:
        statement = statement.offset(offset)
    if limit is not None:
        statement = statement.limit(limit)
    return list(session.exec(statement))


def matching(session: Session, *, project_id: int, where: AnnotationFilter) -> tuple[list[int], int]:
    """The ids of the annotations ``where`` selects (id order) and how many images they are on."""
    rows = session.exec(
        select(Annotation.id, Annotation.image_id)
        .where(*where.conditions(project_id))
        .order_by(col(Annotation.id))
    ).all()
    return [a for a, _ in rows if a is not None], len({i for _, i in rows})
