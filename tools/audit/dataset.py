"""Dataset-level checks: problems no single annotation shows."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np

from tools.audit.findings import AuditAnnotation, Finding


@dataclass(frozen=True)
class DatasetThresholds:
    imbalance_ratio: float = 20.0  # largest class / smallest non-empty class
    low_score: float = 0.35  # a class whose median score is below this is a low-confidence cluster
    min_scored: int = 5  # ...judged only with at least this many scored annotations


def check_dataset(
    anns: list[AuditAnnotation],
    *,
    images: dict[int, str],
    categories: list[str],
    t: DatasetThresholds | None = None,
) -> list[Finding]:
    """``images`` maps every image id of the project to its file name."""
    t = t or DatasetThresholds()
    out: list[Finding] = []
    counts = Counter(a.category for a in anns)
    for name in categories:
        if counts[name] == 0:
            out.append(
                Finding(
                    kind="empty_class",
                    message=f"class {name!r} has no examples",
                    severity=0.5,
                    confidence=1.0,
                    evidence={"key": name, "class": name},
                )
            )
    labelled = {a.image_id for a in anns}
    for image_id, name in images.items():
        if image_id not in labelled:
            out.append(
                Finding(
                    kind="unlabelled_image",
                    message="image has no annotations",
                    severity=0.3,
                    confidence=1.0,
                    image_id=image_id,
                    image_name=name,
                )
            )
    present = {c: n for c, n in counts.items() if n > 0}
    if len(present) >= 2:
        big, small = max(present, key=present.__getitem__), min(present, key=present.__getitem__)
        ratio = present[big] / present[small]
        if ratio >= t.imbalance_ratio:
            out.append(
                Finding(
                    kind="class_imbalance",
                    message=f"{big!r} has {ratio:.0f}x the examples of {small!r}",
                    severity=0.3,
                    confidence=1.0,
                    evidence={"key": small, "counts": dict(present), "ratio": round(ratio, 1)},
                )
            )
    scores: dict[str, list[float]] = defaultdict(list)
    for a in anns:
        if a.score is not None:
            scores[a.category].append(a.score)
    for name, values in scores.items():
        if len(values) >= t.min_scored and float(np.median(values)) < t.low_score:
            out.append(
                Finding(
                    kind="low_confidence_class",
                    severity=0.4,
                    confidence=0.7,
                    message=f"{name!r}: median score {np.median(values):.2f} over {len(values)} labels",
                    evidence={"key": name, "median": round(float(np.median(values)), 3), "n": len(values)},
                )
            )
    return out
