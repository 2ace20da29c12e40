"""Pairwise checks within an image: duplicates of one class, conflicting classes on one object."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from tools.audit.findings import AuditAnnotation, Finding, box_iou


@dataclass(frozen=True)
class OverlapThresholds:
    duplicate_iou: float = 0.85  # same class this overlapped: one object labelled twice
    conflict_iou: float = 0.8  # different classes this overlapped: one object, two opinions


def check_overlaps(anns: list[AuditAnnotation], t: OverlapThresholds | None = None) -> list[Finding]:
    t = t or OverlapThresholds()
    by_image: dict[int, list[AuditAnnotation]] = defaultdict(list)
    for ann in anns:
        by_image[ann.image_id].append(ann)
    out: list[Finding] = []
    for group in by_image.values():
        group.sort(key=lambda a: a.id)
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                iou = box_iou(a.bbox, b.bbox)
                same = a.category == b.category
                if not iou >= (t.duplicate_iou if same else t.conflict_iou):
                    continue
                # Flag the weaker of the two: it is the one a reviewer most likely removes.
                weak, strong = (a, b) if (a.score or 0.0) <= (b.score or 0.0) else (b, a)
                if same:
                    kind, sev, msg = "duplicate", 0.7, f"duplicates {strong.category} #{strong.id}"
                else:
                    kind, sev, msg = (
                        "class_conflict",
                        0.6,
                        f"{weak.category} on the same object as {strong.category} #{strong.id}",
                    )
                out.append(
                    Finding(
                        kind=kind,
                        message=f"{msg} (IoU {iou:.2f})",
                        severity=sev,
                        confidence=min(1.0, iou),
                        image_id=weak.image_id,
                        image_name=weak.image_name,
                        annotation_id=weak.id,
                        bbox=list(weak.bbox),
                        evidence={
                            "iou": round(iou, 3),
                            "other_id": strong.id,
                            "other_category": strong.category,
                        },
                    )
                )
    return out
