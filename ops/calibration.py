"""Calibration from review decisions: per class, the score above which proposals can be accepted
unseen at a precision the person names, and below which they can be rejected, each with an honest
(Wilson) interval; and applying those thresholds as one undoable change.

What a reviewer decided is the evidence: a proposal (an annotation with a score) that was accepted
counts as right, one rejected as wrong; an annotation without a score (drawn by a person) is an
object the detector missed, so it counts against recall. A proposal a person fixed by hand (its
box or mask redrawn, or itself relabelled, whatever its status now) was wrong as proposed: it
counts as a wrong proposal of the class it was proposed as, and as an object of the class it has
now, like a drawn one. Renaming or merging classes is not a fix: the proposal did not change.
Scores mean different things for different models (a detector's confidence, or its geometric mean
with a verifier's), so each class is calibrated per model string of the provenance: one group per
(class, model).

The accept threshold is the lowest score ``t`` at which the Wilson lower bound of the precision
the auto-accepted proposals will have is >= the target (see :meth:`Curve.bounds`): a small sample
cannot claim a high precision, and says so. The reject threshold is the highest ``r`` below which
the Wilson upper bound of the share of right proposals is <= 1 - target. Applying runs through the
same dry-run-and-token confirmation as :mod:`ops.bulk`: more than ``confirm_over`` changes need the
token of the preview the person saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
from sqlalchemy import func
from sqlmodel import col, select

from ops.bulk import CONFIRM_OVER, DryRun, Edited, fingerprint
from ops.caller import Caller
from ops.errors import Conflict, Invalid
from ops.filters import category_of
from ops.unit import Env, Unit, change, read
from store.annotations import set_status
from store.models import Annotation, AnnotationEvent, AnnotationStatus, Category, ChangeBatch

MIN_REVIEWED = 20  # fewer reviewed proposals than this in a group: no threshold is proposed
CURVE_POINTS = 40


@dataclass(frozen=True)
class Point:
    """Precision (with its interval) and recall of accepting every proposal scoring >= threshold."""

    threshold: float
    reviewed: int
    precision: float
    low: float
    high: float
    recall: float


@dataclass(frozen=True)
class ClassCalibration:
    """One class (and model) as calibrated: the thresholds, their evidence, what applying moves."""

    label: str
    model: str
    reviewed: int
    accepted: int
    drawn: int  # scoreless annotations of the class: objects a person added (missed by the model)
    accept_above: float | None
    precision: float | None
    low: float | None
    high: float | None
    recall: float | None
    reject_below: float | None
    good_below: float | None  # upper bound of the share of right proposals below reject_below
    to_accept: int
    to_reject: int
    to_review: int
    note: str = ""
    curve: list[Point] = field(default_factory=list)
    fixed: int = 0  # proposals of the class a person redrew or relabelled: wrong as proposed

    def text(self) -> str:
        who = f"{self.label!r} ({self.model})"
        if self.accept_above is None and self.reject_below is None:
            return f"{who}: {self.note}; {self.to_review} stay for review"
        parts = []
        if self.accept_above is not None:
            parts.append(
                f"auto-accept {self.to_accept} above {self.accept_above:.3f}, est. precision "
                f"{self.precision:.2f} [{self.low:.2f}, {self.high:.2f}], recall {self.recall:.2f}"
            )
        if self.reject_below is not None:
            parts.append(
                f"reject {self.to_reject} below {self.reject_below:.3f} (<= {self.good_below:.2f} right)"
            )
        return f"{who}: {'; '.join(parts)}; {self.to_review} stay for review"


@dataclass(frozen=True)
class Calibration:
    precision: float
    confidence: float
    classes: list[ClassCalibration]

    def text(self) -> str:
        head = f"target precision {self.precision} at {self.confidence:.0%} confidence"
        return "\n".join(
            [head, *(c.text() for c in self.classes)] if self.classes else [head, "nothing reviewed"]
        )


class Curve:
    """Reviewed scores and verdicts of one group, sorted by score descending."""

    def __init__(
        self, scores: Sequence[float], accepted: Sequence[bool], z: float, pending: Sequence[float] = ()
    ) -> None:
        order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
        self.s = np.asarray(scores, dtype=np.float64)[order]
        self.a = np.asarray(accepted, dtype=bool)[order]
        self.pending = np.sort(np.asarray(pending, dtype=np.float64))
        self.z = z

    def wilson(self, k: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The Wilson score interval of k successes in n trials (n may be fractional), elementwise."""
        n = np.maximum(n, 1e-9)
        p, z2 = np.clip(k / n, 0, 1), self.z**2
        centre = (p + z2 / (2 * n)) / (1 + z2 / n)
        half = self.z * np.sqrt(p * (1 - p) / n + z2 / (4 * n**2)) / (1 + z2 / n)
        return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)

    def above(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(thresholds, n reviewed >= t, k accepted >= t), one per distinct score, highest first."""
        ends = np.flatnonzero(np.append(self.s[1:] != self.s[:-1], True)) if len(self.s) else np.zeros(0, int)
        return self.s[ends], ends + 1, np.cumsum(self.a)[ends]

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per threshold of :meth:`above`, the interval of the precision the pending proposals at or
        above it will have once accepted. Those are a finite sample of their own, so the interval
        is Wilson's at the effective size ``1 / (1/reviewed + 1/pending)``: what a person measures
        on them afterwards falls inside at about the stated confidence (a plain interval for the
        reviewed share alone would cover it only ~83% of the time when both sets are equal)."""
        t, n, k = self.above()
        m = len(self.pending) - np.searchsorted(self.pending, t, side="left")
        eff = np.where(m > 0, 1 / (1 / n + 1 / np.maximum(m, 1)), n)
        return self.wilson(k / n * eff, eff)

    def accept_threshold(self, target: float) -> int | None:
        """Index into :meth:`above` of the lowest threshold whose precision bound meets ``target``."""
        ok = np.flatnonzero(self.bounds()[0] >= target)
        return int(ok[-1]) if len(ok) else None

    def reject_threshold(self, target: float, ceiling: float | None) -> tuple[float, float] | None:
        """(r, upper bound of right share below r): the highest r with that bound <= 1 - target."""
        s, a = self.s[::-1], self.a[::-1]  # ascending
        starts = np.flatnonzero(np.append(True, s[1:] != s[:-1]))[1:]  # r = s[j]: the j items below
        if not len(starts):
            return None
        good = np.cumsum(a)[starts - 1]
        high = self.wilson(good, starts)[1]
        ok = np.flatnonzero((high <= 1 - target) & ((s[starts] <= ceiling) if ceiling is not None else True))
        return (float(s[starts[ok[-1]]]), float(high[ok[-1]])) if len(ok) else None

    def points(self, positives: int) -> list[Point]:
        t, n, k = self.above()
        low, high = self.bounds()
        pick = np.unique(np.linspace(0, len(t) - 1, min(CURVE_POINTS, len(t))).round().astype(int))
        return [
            Point(round(float(t[i]), 4), int(n[i]), round(float(k[i] / n[i]), 4), round(float(low[i]), 4),
                  round(float(high[i]), 4), round(float(k[i] / max(positives, 1)), 4))
            for i in pick
        ]  # fmt: skip


def _z(confidence: float) -> float:
    if not 0.5 <= confidence < 1:
        raise Invalid(f"confidence must be in [0.5, 1), got {confidence!r}")
    return NormalDist().inv_cdf(1 - (1 - confidence) / 2)


FIXES = ("edit #", "relabel")  # batch descriptions of changes to chosen annotations (not a class rename)


def _fixed(unit: Unit) -> dict[int, int | None]:
    """Proposals a person fixed by hand -> the class id they were proposed as if they were
    relabelled, None if only redrawn (the class they have now).

    A fix is an update in a person's change (not a job's, not undone) that moved the box or mask of
    a scored annotation, or relabelled that annotation itself (``edit #..`` / ``relabel ..``);
    only those batches are read, so reviewing (status changes) costs nothing here.
    """
    rows = unit.session.exec(
        select(AnnotationEvent.annotation_id, AnnotationEvent.before, AnnotationEvent.after,
               ChangeBatch.description)
        .join(ChangeBatch, col(ChangeBatch.id) == col(AnnotationEvent.batch_id))
        .where(AnnotationEvent.project_id == unit.project_id, AnnotationEvent.action == "update",
               ChangeBatch.kind == "change", col(ChangeBatch.undone).is_(False), ChangeBatch.via != "job",
               col(ChangeBatch.description).like(f"{FIXES[0]}%")
               | col(ChangeBatch.description).like(f"{FIXES[1]}%"))
        .order_by(col(AnnotationEvent.id))
    ).all()  # fmt: skip
    out: dict[int, int | None] = {}
    for ann_id, before, after, _description in rows:
        if not before or not after or before.get("score") is None:
            continue
        if before.get("category_id") != after.get("category_id") and out.get(int(ann_id)) is None:
            out[int(ann_id)] = int(before["category_id"])  # relabelled: it was proposed as that class
        elif before.get("bbox") != after.get("bbox") or before.get("mask") != after.get("mask"):
            out.setdefault(int(ann_id), None)  # redrawn: proposed as the class it has (renames follow)
    return out


def _groups(
    unit: Unit, labels: Sequence[str] | None, fixed: dict[int, int | None]
) -> dict[tuple[int, str, str], list[tuple[int, float, str]]]:
    """(category id, class, model) -> [(annotation id, score, status)] of the scored annotations;
    a fixed proposal is in the group of the class it was proposed as, with the status "fixed"."""
    wanted = {category_of(unit.session, unit.project_id, n).id for n in labels} if labels else None
    names = dict(
        unit.session.exec(
            select(Category.id, Category.name).where(Category.project_id == unit.project_id)
        ).all()
    )
    rows = unit.session.exec(
        select(Annotation.id, Annotation.category_id, Annotation.model, Annotation.score, Annotation.status)
        .where(Annotation.project_id == unit.project_id, col(Annotation.score).is_not(None))
        .order_by(col(Annotation.id))
    ).all()
    out: dict[tuple[int, str, str], list[tuple[int, float, str]]] = {}
    for ann_id, cat_id, model, score, status in rows:
        proposed_as = fixed.get(ann_id or 0) or cat_id
        if (wanted is not None and proposed_as not in wanted) or proposed_as not in names:
            continue  # relabelled away from a class since renamed or merged: not attributable
        verdict = "fixed" if ann_id in fixed else AnnotationStatus(status).value
        out.setdefault((proposed_as, names[proposed_as], model), []).append(
            (ann_id or 0, float(score), verdict)
        )
    return out


def _drawn(unit: Unit, fixed: dict[int, int | None]) -> tuple[dict[int, int], dict[int, int]]:
    """Per class id: (objects a person drew, proposals of it fixed by hand), neither rejected; both
    are objects of the class the model did not get right, so both count against recall."""
    rows = unit.session.exec(
        select(Annotation.category_id, func.count())
        .where(Annotation.project_id == unit.project_id, col(Annotation.score).is_(None),
               Annotation.status != AnnotationStatus.rejected)
        .group_by(Annotation.category_id)
    ).all()  # fmt: skip
    repaired: dict[int, int] = {}
    if fixed:
        now = unit.session.exec(
            select(Annotation.category_id).where(
                col(Annotation.id).in_(list(fixed)), Annotation.status != AnnotationStatus.rejected
            )
        ).all()
        for cat_id in now:
            repaired[int(cat_id)] = repaired.get(int(cat_id), 0) + 1
    return {int(c): int(n) for c, n in rows}, repaired


def _calibrate(
    unit: Unit, precision: float, confidence: float, labels: Sequence[str] | None, min_reviewed: int
) -> tuple[Calibration, dict[str, list[int]]]:
    """The report, and the ids applying it moves: {"accepted": [...], "rejected": [...]}."""
    if not 0.5 <= precision < 1:
        raise Invalid(f"precision must be in [0.5, 1), got {precision!r}")
    fixed = _fixed(unit)
    z, (drawn, repaired) = _z(confidence), _drawn(unit, fixed)
    out: list[ClassCalibration] = []
    moves: dict[str, list[int]] = {"accepted": [], "rejected": []}
    for (cat_id, name, model), rows in sorted(
        _groups(unit, labels, fixed).items(), key=lambda kv: (kv[0][1], kv[0][2])
    ):
        reviewed = [(s, st == "accepted") for _i, s, st in rows if st != "proposed"]
        pending = [(i, s) for i, s, st in rows if st == "proposed"]
        accepted = sum(a for _s, a in reviewed)
        curve = Curve([s for s, _a in reviewed], [a for _s, a in reviewed], z, [s for _i, s in pending])
        positives = accepted + drawn.get(cat_id, 0) + repaired.get(cat_id, 0)
        accept = reject = None
        note = ""
        if len(reviewed) < min_reviewed:
            note = f"too few reviewed to calibrate ({len(reviewed)} < {min_reviewed})"
        else:
            accept = curve.accept_threshold(precision)
            ceiling = float(curve.above()[0][accept]) if accept is not None else None
            reject = curve.reject_threshold(precision, ceiling)
            if accept is None:
                note = f"no threshold reaches precision {precision} with {confidence:.0%} confidence"
        t, n, k = curve.above()
        low = high = None
        if accept is not None:
            lows, highs = curve.bounds()
            low, high = float(lows[accept]), float(highs[accept])
        up = float(t[accept]) if accept is not None else None
        down = reject[0] if reject is not None else None
        go_up = [i for i, s in pending if up is not None and s >= up]
        go_down = [i for i, s in pending if down is not None and s < down]
        moves["accepted"] += go_up
        moves["rejected"] += go_down
        out.append(
            ClassCalibration(
                label=name, model=model, reviewed=len(reviewed), accepted=accepted,
                drawn=drawn.get(cat_id, 0),
                accept_above=None if up is None else round(up, 4),
                precision=None if accept is None else round(float(k[accept] / n[accept]), 4),
                low=None if low is None else round(low, 4), high=None if high is None else round(high, 4),
                recall=None if accept is None else round(float(k[accept] / max(positives, 1)), 4),
                reject_below=None if down is None else round(down, 4),
                good_below=None if reject is None else round(reject[1], 4),
                to_accept=len(go_up), to_reject=len(go_down),
                to_review=len(pending) - len(go_up) - len(go_down),
                note=note, curve=curve.points(positives) if reviewed else [],
                fixed=sum(st == "fixed" for _i, _s, st in rows),
            )
        )  # fmt: skip
    return Calibration(precision, confidence, out), moves


def calibrate(
    env: Env, caller: Caller | None, project_id: int, *, precision: float = 0.95, confidence: float = 0.95,
    labels: Sequence[str] | None = None, min_reviewed: int = MIN_REVIEWED,
) -> Calibration:  # fmt: skip
    """Per class and model: thresholds for ``precision``, the interval, and what applying moves."""
    with read(env, caller, "calibration.read", project_id) as unit:
        return _calibrate(unit, precision, confidence, labels, min_reviewed)[0]


def apply(
    env: Env, caller: Caller | None, project_id: int, *, precision: float = 0.95, confidence: float = 0.95,
    labels: Sequence[str] | None = None, min_reviewed: int = MIN_REVIEWED, reject: bool = True,
    confirm: str | None = None, preview: bool = False, confirm_over: int = CONFIRM_OVER,
) -> Edited | DryRun:  # fmt: skip
    """Accept the proposals above each class's threshold (and reject those below, with ``reject``)
    as ONE change batch: one ``undo`` reverts it all. A dry run first when it is large."""
    with change(env, caller, "calibration.apply", project_id) as unit:
        report, moves = _calibrate(unit, precision, confidence, labels, min_reviewed)
        if not reject:
            moves["rejected"] = []
        ids = sorted(moves["accepted"] + moves["rejected"])
        summary = "calibrate: " + "; ".join(c.text() for c in report.classes if c.to_accept or c.to_reject)
        if not ids:
            raise Invalid(f"nothing to apply: {report.text()}")
        args = {
            "precision": precision,
            "confidence": confidence,
            "labels": list(labels or []),
            "reject": reject,
        }
        token = fingerprint(unit.session, "calibrate", args, ids)
        images = len(
            set(unit.session.exec(select(Annotation.image_id).where(col(Annotation.id).in_(ids))).all())
        )
        dry = DryRun("calibrate", token, len(ids), images, summary)
        if preview:
            return dry
        if confirm is not None and confirm != token:
            raise Conflict("the proposals or reviews changed since the preview; nothing was applied")
        if confirm is None and len(ids) > confirm_over:
            return dry
        batch = unit.batch(summary)
        changed = sum(
            set_status(unit.session, batch=batch, ids=chosen, status=status)
            for status, chosen in moves.items()
            if chosen
        )
        unit.event("annotation", "updated", ids)
        return Edited("calibrate", changed, summary, batch.id)
