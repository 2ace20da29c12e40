"""Which annotations: one filter type for every query that selects annotations.

Count, find, bulk edits, exports and the API's list all take an :class:`AnnotationFilter`, so a
filter means the same thing everywhere (the operations layer resolves names to ids first).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import col

from store.models import Annotation, AnnotationStatus

MAX_IN = 900  # ids per IN (...) list: below SQLite's default limit on bound parameters


def _ids(name: str, values: Any) -> tuple[int, ...] | None:
    if values is None:
        return None
    out = tuple(dict.fromkeys(int(v) for v in values))
    if len(out) > MAX_IN:
        raise ValueError(f"{name} may list at most {MAX_IN} ids, got {len(out)}")
    return out


@dataclass(frozen=True)
class AnnotationFilter:
    """Every field given must hold; ``None`` means "any". Empty id tuples match nothing."""

    ids: tuple[int, ...] | None = None
    image_ids: tuple[int, ...] | None = None
    category_ids: tuple[int, ...] | None = None
    statuses: tuple[AnnotationStatus, ...] | None = None
    min_score: float | None = None
    max_score: float | None = None
    tool: str | None = None
    job_id: int | None = None
    extra: tuple[Any, ...] = field(default=(), compare=False)  # more SQL conditions, for store code

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", _ids("ids", self.ids))
        object.__setattr__(self, "image_ids", _ids("image_ids", self.image_ids))
        object.__setattr__(self, "category_ids", _ids("category_ids", self.category_ids))
        if self.statuses is not None:
            try:
                statuses = tuple(dict.fromkeys(AnnotationStatus(s) for s in self.statuses))
            except ValueError:
                raise ValueError(
                    f"statuses must be among {[s.value for s in AnnotationStatus]}, got {self.statuses!r}"
                ) from None
            object.__setattr__(self, "statuses", statuses)
        for name in ("min_score", "max_score"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")

    def conditions(self, project_id: int) -> list[Any]:
        """SQL conditions on ``Annotation`` for this filter inside ``project_id``."""
        out: list[Any] = [Annotation.project_id == project_id, *self.extra]
        for column, values in (
            (Annotation.id, self.ids),
            (Annotation.image_id, self.image_ids),
            (Annotation.category_id, self.category_ids),
            (Annotation.status, self.statuses),
        ):
            if values is not None:
                out.append(col(column).in_(list(values)))
        if self.min_score is not None:
            out.append(col(Annotation.score) >= self.min_score)
        if self.max_score is not None:
            out.append(col(Annotation.score) <= self.max_score)
        if self.tool is not None:
            out.append(Annotation.tool == self.tool)
        if self.job_id is not None:
            out.append(Annotation.job_id == self.job_id)
        return out

    def is_everything(self) -> bool:
        """True when no field narrows the selection (a bulk change then needs ``everything``)."""
        return all(
            v is None
            for v in (
                self.ids, self.image_ids, self.category_ids, self.statuses, self.min_score,
                self.max_score, self.tool, self.job_id,
            )
        ) and not self.extra  # fmt: skip
