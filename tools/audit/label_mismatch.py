"""Label mismatch: the verifier scores each crop against its own class and the project's others.

A label is flagged when another class wins clearly (the crop looks like a truck, not a bus), or when
its own score is so low that the crop hardly shows the class at all. Labels the verifier cannot
judge (NaN: the lite verifier is an ImageNet classifier and has no "person") are never flagged, and
other classes it cannot judge never win.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tools.audit.findings import AuditAnnotation, Finding

KIND = "label_mismatch"


@dataclass(frozen=True)
class MismatchThresholds:
    # Another class beats the own label by this much... (0.25 missed a bus labelled truck: the
    # ImageNet verifier gives a bus crop bus 0.34, truck 0.17; trucks and buses share mass there.)
    margin: float = 0.15
    min_other: float = 0.3  # ...and scores at least this: it wins clearly
    low_own: float = 0.02  # own score below this (and nothing else wins): the crop hardly shows it


def crop_xywh(image: np.ndarray, bbox: list[float]) -> np.ndarray:
    """The pixels of an ``[x, y, w, h]`` box, clipped to the image and at least 1x1."""
    h, w = image.shape[:2]
    x1, y1 = min(max(int(round(bbox[0])), 0), w - 1), min(max(int(round(bbox[1])), 0), h - 1)
    x2, y2 = int(round(bbox[0] + bbox[2])), int(round(bbox[1] + bbox[3]))
    return image[y1 : max(min(y2, h), y1 + 1), x1 : max(min(x2, w), x1 + 1)]


def judge(ann: AuditAnnotation, scores: dict[str, float], t: MismatchThresholds) -> Finding | None:
    """One annotation's verdict from its crop's score per class (NaN where the verifier cannot judge)."""
    own = scores.get(ann.category, math.nan)
    if math.isnan(own):
        return None
    others = {c: s for c, s in scores.items() if c != ann.category and not math.isnan(s)}
    best = max(others, key=others.__getitem__) if others else None
    best_score = others[best] if best is not None else 0.0
    evidence: dict[str, object] = {"own": round(own, 3)}
    if best is not None:
        evidence.update(best_class=best, best=round(best_score, 3))
    if best is not None and best_score >= t.min_other and best_score - own >= t.margin:
        message = f"looks like {best} ({best_score:.2f}) rather than {ann.category} ({own:.2f})"
        severity, confidence = 0.8, min(1.0, 0.5 + (best_score - own))
    elif own < t.low_own:
        message = f"the verifier hardly sees a {ann.category} here (score {own:.2f})"
        severity, confidence = 0.6, min(1.0, 0.5 + (t.low_own - own) / t.low_own * 0.3)
    else:
        return None
    return Finding.about(ann, KIND, message, severity, confidence, evidence)


CROP_BATCH = 32  # crops per verifier call: one forward pass over several images' objects


def vocabulary(classes: list[str], anns: list[AuditAnnotation]) -> list[str]:
    """What every crop is scored against: the project's classes and every label in use."""
    return sorted(set(classes) | {a.category for a in anns})


def judgeable(verifier: object, vocab: list[str]) -> set[str]:
    """The labels the verifier can judge, from one tiny probe crop (NaN columns are labels it cannot).

    The crop of an annotation whose label is not among them is never scored: its verdict would be
    None whatever the crop shows (the lite verifier has no "person", most labels of a street scene).
    A verifier that knows its labels without looking (``judgeable(labels)``, the lite one) is asked
    instead: the probe is a forward pass, about 4% of a small audit's CPU.
    """
    ask = getattr(verifier, "judgeable", None)
    if callable(ask):
        return set(ask(vocab)) & set(vocab)
    probe = np.full((32, 32, 3), 128, np.uint8)
    row = np.asarray(verifier.score([probe], vocab), np.float64).reshape(-1)  # type: ignore[attr-defined]
    if row.shape != (len(vocab),):
        raise ValueError(f"verifier returned {row.shape[0]} scores for the probe crop, expected {len(vocab)}")
    return {label for label, score in zip(vocab, row, strict=True) if not math.isnan(score)}


def judge_crops(
    items: list[tuple[AuditAnnotation, np.ndarray]],
    *,
    verifier: object,
    vocab: list[str],
    t: MismatchThresholds | None = None,
) -> list[Finding]:
    """Score ``(annotation, crop)`` pairs in one verifier call and judge each annotation."""
    if not items:
        return []
    t = t or MismatchThresholds()
    table = np.asarray(verifier.score([crop for _, crop in items], vocab))  # type: ignore[attr-defined]
    if table.shape != (len(items), len(vocab)):
        raise ValueError(
            f"verifier returned scores of shape {table.shape}, expected {(len(items), len(vocab))}"
        )
    out: list[Finding] = []
    for (ann, _), row in zip(items, table, strict=True):
        finding = judge(ann, {c: float(s) for c, s in zip(vocab, row, strict=True)}, t)
        if finding is not None:
            out.append(finding)
    return out


def check_label_mismatch(
    anns: list[AuditAnnotation],
    *,
    load_image: Callable[[int], np.ndarray],
    verifier: object,
    classes: list[str],
    t: MismatchThresholds | None = None,
    batch: int = CROP_BATCH,
) -> list[Finding]:
    """Score the crop of every annotation the verifier can judge against all ``classes``.

    ``batch`` crops go into one verifier call (measured on the lite verifier on CPU: per-crop cost
    is flat from 1 to 32 crops, so the batch saves calls, not compute).

    Images are decoded one at a time; only the crops wait for their batch. ``load_image(image_id)``
    returns RGB uint8; ``verifier`` meets the ``Verifier`` Protocol.
    """
    vocab = vocabulary(classes, anns)
    known = judgeable(verifier, vocab) if anns else set()
    by_image: dict[int, list[AuditAnnotation]] = {}
    for ann in anns:
        if ann.category in known:
            by_image.setdefault(ann.image_id, []).append(ann)
    out: list[Finding] = []
    pending: list[tuple[AuditAnnotation, np.ndarray]] = []
    for image_id, group in by_image.items():
        image = load_image(image_id)
        pending.extend((a, crop_xywh(image, a.bbox).copy()) for a in group)
        if len(pending) >= batch:
            out.extend(judge_crops(pending, verifier=verifier, vocab=vocab, t=t))
            pending = []
    out.extend(judge_crops(pending, verifier=verifier, vocab=vocab, t=t))
    return out
