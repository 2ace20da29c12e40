"""Review order: the proposals (or images) worth a person's time first.

Each proposal gets the chance that it is wrong, from what reviewers decided so far: among the
reviewed proposals of the same class and model (see :mod:`ops.calibration`), the share rejected
near its score (the ``WINDOW`` nearest reviewed scores, shrunk towards the score itself with the
weight of ``PRIOR`` reviews, so a class nobody reviewed yet is ordered by its score). Open audit
findings on it (the verifier disagreeing, a spilled mask, a duplicate ...) are further evidence,
combined as independent: ``1 - (1 - p_wrong) * prod(1 - severity * confidence)``.

Two focuses: ``errors`` (most likely wrong first: finds wrong labels fastest) and ``boundary``
(closest to a coin toss first: the reviews that teach the calibration most). Diversity: the
j-th proposal of one image counts ``DECAY ** j`` of its priority, so one crowded image does not
fill the queue. ``by="image"`` ranks images by their best proposal (the review stream's "next
image").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from sqlmodel import col, select

from ops.caller import Caller
from ops.errors import Invalid
from ops.filters import category_of
from ops.unit import Env, Unit, read
from store.models import Annotation, AnnotationStatus, AuditFinding, Category, Image

Focus = Literal["errors", "boundary"]
By = Literal["annotation", "image"]
WINDOW = 30
PRIOR = 5.0
DECAY = 0.7
MAX_LIMIT = 1000


@dataclass(frozen=True)
class ReviewItem:
    """One proposal to look at, and why it is this far up."""

    annotation_id: int
    image_id: int
    file_name: str
    label: str
    score: float | None
    p_wrong: float
    priority: float
    reasons: list[str] = field(default_factory=list)
    finding_ids: list[int] = field(default_factory=list)
    proposals: int = 1  # by="image": how many proposals the image has waiting

    def text(self) -> str:
        score = "none" if self.score is None else f"{self.score:.2f}"
        why = f" ({'; '.join(self.reasons)})" if self.reasons else ""
        return (
            f"#{self.annotation_id} {self.label!r} on {self.file_name} score {score}, "
            f"p(wrong) {self.p_wrong:.2f}{why}"
        )


def _p_right(reviewed: list[tuple[float, bool]], scores: np.ndarray) -> np.ndarray:
    """Chance each score's proposal is right: the local accept rate of the reviewed, smoothed."""
    prior = np.clip(np.nan_to_num(scores, nan=0.5), 0, 1)
    if not reviewed:
        return prior
    s = np.asarray([x for x, _a in reviewed], dtype=np.float64)
    order = np.argsort(s)
    s, a = s[order], np.asarray([y for _x, y in reviewed], dtype=np.float64)[order]
    window = min(WINDOW, len(s))
    at = np.searchsorted(s, np.nan_to_num(scores, nan=0.5))
    start = np.clip(at - window // 2, 0, len(s) - window)
    csum = np.concatenate([[0.0], np.cumsum(a)])
    accepted = csum[start + window] - csum[start]
    return (accepted + PRIOR * prior) / (window + PRIOR)


def _rows(unit: Unit, labels: Sequence[str] | None) -> list[tuple]:
    where = [Annotation.project_id == unit.project_id]
    if labels:
        ids = [category_of(unit.session, unit.project_id, n).id for n in labels]
        where.append(col(Annotation.category_id).in_(ids))
    return list(
        unit.session.exec(
            select(Annotation.id, Annotation.image_id, Image.file_name, Annotation.category_id, Category.name,
                   Annotation.model, Annotation.score, Annotation.status)
            .join(Category, col(Category.id) == col(Annotation.category_id))
            .join(Image, col(Image.id) == col(Annotation.image_id))
            .where(*where)
            .order_by(col(Annotation.id))
        ).all()
    )  # fmt: skip


def _findings(unit: Unit) -> dict[int, list[tuple[int, str, float]]]:
    rows = unit.session.exec(
        select(AuditFinding.annotation_id, AuditFinding.id, AuditFinding.kind, AuditFinding.severity,
               AuditFinding.confidence)
        .where(AuditFinding.project_id == unit.project_id, AuditFinding.status == "open",
               col(AuditFinding.annotation_id).is_not(None))
    ).all()  # fmt: skip
    out: dict[int, list[tuple[int, str, float]]] = defaultdict(list)
    for ann_id, fid, kind, severity, confidence in rows:
        out[int(ann_id)].append((fid or 0, kind, float(severity) * float(confidence)))
    return out


def _ranked(unit: Unit, labels: Sequence[str] | None, focus: Focus, exclude: set[int]) -> list[ReviewItem]:
    rows = _rows(unit, labels)
    reviewed: dict[tuple[int, str], list[tuple[float, bool]]] = defaultdict(list)
    pending: dict[tuple[int, str], list[tuple]] = defaultdict(list)
    for row in rows:
        status, key = AnnotationStatus(row[7]), (row[3], row[5])
        if status is AnnotationStatus.proposed:
            if row[0] not in exclude:
                pending[key].append(row)
        elif row[6] is not None:
            reviewed[key].append((float(row[6]), status is AnnotationStatus.accepted))
    flagged = _findings(unit)
    items: list[ReviewItem] = []
    for key, group in pending.items():
        scores = np.asarray([np.nan if r[6] is None else r[6] for r in group], dtype=np.float64)
        p_right = _p_right(reviewed[key], scores)
        for row, right in zip(group, p_right, strict=True):
            found = flagged.get(row[0], [])
            p_wrong = 1 - float(right) * float(np.prod([1 - w for _f, _k, w in found]))
            reasons = [f"{len(reviewed[key])} reviewed of its class say p(wrong) {1 - right:.2f}"]
            reasons += [f"finding {fid}: {kind}" for fid, kind, _w in found]
            priority = p_wrong if focus == "errors" else 4 * p_wrong * (1 - p_wrong)
            items.append(
                ReviewItem(row[0], row[1], row[2], row[4], None if row[6] is None else round(row[6], 4),
                           round(p_wrong, 4), priority, reasons, [f for f, _k, _w in found])
            )  # fmt: skip
    items.sort(key=lambda i: (-i.priority, i.annotation_id))
    seen: dict[int, int] = defaultdict(int)
    diverse = []
    for item in items:  # each image's j-th proposal counts DECAY ** j: a stable re-ranking
        diverse.append((item.priority * DECAY ** seen[item.image_id], item))
        seen[item.image_id] += 1
    diverse.sort(key=lambda pi: (-pi[0], pi[1].annotation_id))
    return [ReviewItem(**{**i.__dict__, "priority": round(p, 4)}) for p, i in diverse]


def queue(
    env: Env, caller: Caller | None, project_id: int, *, limit: int = 20, offset: int = 0,
    labels: Sequence[str] | None = None, focus: Focus = "errors", by: By = "annotation",
    exclude: Sequence[int] = (),
) -> list[ReviewItem]:  # fmt: skip
    """The proposals (``by="image"``: one per image, its best) in review order; ``exclude`` skips
    ids the person passed over, so "next" is ``queue(limit=1, exclude=skipped)``."""
    if focus not in ("errors", "boundary"):
        raise Invalid(f"focus must be 'errors' or 'boundary', got {focus!r}")
    if by not in ("annotation", "image"):
        raise Invalid(f"by must be 'annotation' or 'image', got {by!r}")
    if not 1 <= int(limit) <= MAX_LIMIT or int(offset) < 0:
        raise Invalid(
            f"limit must be in [1, {MAX_LIMIT}] and offset >= 0, got limit={limit}, offset={offset}"
        )
    with read(env, caller, "review_order.read", project_id) as unit:
        items = _ranked(unit, labels, focus, {int(i) for i in exclude})
        if by == "image":
            counts: dict[int, int] = defaultdict(int)
            for item in items:
                counts[item.image_id] += 1
            best = {}
            for item in items:
                best.setdefault(item.image_id, item)
            items = [ReviewItem(**{**i.__dict__, "proposals": counts[i.image_id]}) for i in best.values()]
        return items[int(offset) : int(offset) + int(limit)]
