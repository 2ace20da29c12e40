"""Detector cross-checks: objects nobody labelled, and labels much larger than their object.

The detector is re-run for the project's classes. A confident detection that overlaps no existing
annotation of its class is a missing annotation (its finding's bbox is the detection box). A
detection that coincides with an annotation of ANOTHER class is skipped: that is one object with a
disputed class, which the label-mismatch check judges, not an unlabelled one. An annotation whose
box holds a same-class detection that fills only a small part of it has spilled past its object
(a mask leaking into the background, a box dragged too far).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tools.audit.findings import AuditAnnotation, Finding, box_iou

MISSING = "missing_object"
SPILL = "mask_spills"
LOOSE = "loose_box"


@dataclass(frozen=True)
class MissingThresholds:
    min_confidence: float = 0.5  # detections below this are too unsure to call an object missing
    match_iou: float = 0.5  # a same-class annotation this overlapped accounts for the detection
    match_cover: float = 0.6  # ...as does one covering this share of the detection box
    other_class_iou: float = 0.7  # an other-class annotation this overlapped is the same object
    fit_confidence: float = 0.4  # detections trusted to outline an annotated object
    fit_cover: float = 0.85  # the detection lies this much inside the annotation box...
    max_fit_ratio: float = 0.6  # ...but fills at most this share of it: the label spilled


def _cover(inner: list[float], outer: list[float]) -> float:
    """Share of ``inner``'s area inside ``outer`` (both ``[x, y, w, h]``)."""
    iw = max(0.0, min(inner[0] + inner[2], outer[0] + outer[2]) - max(inner[0], outer[0]))
    ih = max(0.0, min(inner[1] + inner[3], outer[1] + outer[3]) - max(inner[1], outer[1]))
    area = inner[2] * inner[3]
    return iw * ih / area if area > 0 else 0.0


def detect_known(
    detector: object, image: np.ndarray, classes: list[str], threshold: float
) -> tuple[list[tuple[str, list[float], float]], list[str]]:
    """Detections ``(class, [x, y, w, h], conf)`` and the classes the detector accepted.

    A closed-vocabulary detector refuses a label it cannot look for with a ``ValueError`` naming it
    (``UnknownLabel.label``); that class is dropped and the call repeated, so one unknown class does
    not stop the check for the others.
    """
    usable = list(classes)
    while usable:
        try:
            found = detector.detect(image, usable, threshold)  # type: ignore[attr-defined]
        except ValueError as exc:
            refused = getattr(exc, "label", None)
            if refused not in usable:
                raise
            usable.remove(refused)
            continue
        detections = [
            (str(label), [float(x1), float(y1), float(x2 - x1), float(y2 - y1)], float(conf))
            for (x1, y1, x2, y2), conf, label in zip(found.xyxy, found.confidence, found.label, strict=True)
        ]
        return detections, usable
    return [], []


def compare(
    anns: list[AuditAnnotation],
    detections: list[tuple[str, list[float], float]],
    *,
    image_id: int,
    image_name: str,
    t: MissingThresholds,
) -> list[Finding]:
    """Findings for one image from its annotations and its detections ``(class, [x, y, w, h], conf)``."""
    out: list[Finding] = []
    for label, box, conf in detections:
        if conf < t.min_confidence:
            continue
        same = [a for a in anns if a.category == label]
        if any(box_iou(box, a.bbox) >= t.match_iou or _cover(box, a.bbox) >= t.match_cover for a in same):
            continue
        if any(box_iou(box, a.bbox) >= t.other_class_iou for a in anns if a.category != label):
            continue
        out.append(
            Finding(
                kind=MISSING,
                message=f"unlabelled {label}? the detector sees one at {conf:.2f}",
                severity=0.7,
                confidence=float(min(1.0, conf)),
                image_id=image_id,
                image_name=image_name,
                bbox=[round(v, 1) for v in box],
                evidence={"key": label, "class": label, "detector": round(conf, 3)},
            )
        )
    for ann in anns:
        inside = [
            (box, conf)
            for label, box, conf in detections
            if label == ann.category and conf >= t.fit_confidence and _cover(box, ann.bbox) >= t.fit_cover
        ]
        if not inside:
            continue
        box, conf = max(inside, key=lambda d: d[0][2] * d[0][3])
        ratio = box[2] * box[3] / max(ann.bbox[2] * ann.bbox[3], 1.0)
        if ratio > t.max_fit_ratio:
            continue
        kind, what = (SPILL, "mask") if ann.mask is not None else (LOOSE, "box")
        out.append(
            Finding.about(
                ann,
                kind,
                f"the {ann.category} fills only {ratio:.0%} of its {what}: it spills past the object",
                0.6,
                float(min(1.0, conf * (1.2 - ratio))),
                {
                    "detected_box": [round(v, 1) for v in box],
                    "detector": round(conf, 3),
                    "fill": round(ratio, 3),
                },
            )
        )
    return out


def check_missing(
    anns: list[AuditAnnotation],
    *,
    images: dict[int, str],
    load_image: Callable[[int], np.ndarray],
    detector: object,
    classes: list[str],
    t: MissingThresholds | None = None,
) -> list[Finding]:
    """Run ``detector`` on every image of ``images`` (id -> file name) for ``classes`` and compare."""
    t = t or MissingThresholds()
    by_image: dict[int, list[AuditAnnotation]] = {i: [] for i in images}
    for ann in anns:
        by_image.setdefault(ann.image_id, []).append(ann)
    usable = list(classes)
    out: list[Finding] = []
    for image_id, name in images.items():
        if not usable:
            break
        threshold = min(t.min_confidence, t.fit_confidence)
        detections, usable = detect_known(detector, load_image(image_id), usable, threshold)
        out.extend(compare(by_image[image_id], detections, image_id=image_id, image_name=name, t=t))
    return out
