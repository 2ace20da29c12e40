"""What an audit check reports, and the record of an annotation the checks read."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class AuditAnnotation:
    """The slice of an annotation the checks need, decoupled from the database row."""

    id: int
    image_id: int
    image_name: str
    image_size: tuple[int, int]  # (width, height)
    category: str
    bbox: list[float]  # [x, y, w, h]
    score: float | None = None
    mask: dict[str, Any] | None = None  # COCO RLE
    segmentation: list[list[float]] | dict[str, Any] | None = None
    # A frame of a video (the track checks, tools.audit.tracks): its track, video and frame index.
    track_id: int | None = None
    video_id: int | None = None
    frame_index: int | None = None

    def decoded_mask(self) -> np.ndarray | None:
        if self.mask is None:
            return None
        from pycocotools import mask as mask_utils

        rle = dict(self.mask)
        if isinstance(rle.get("counts"), str):
            rle["counts"] = rle["counts"].encode()
        return mask_utils.decode(rle).astype(bool)


@dataclass
class Finding:
    """One suspected problem. ``severity`` and ``confidence`` in [0, 1] rank the review queue."""

    kind: str
    message: str
    severity: float
    confidence: float
    image_id: int | None = None
    image_name: str | None = None
    annotation_id: int | None = None
    bbox: list[float] | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def about(
        cls,
        ann: AuditAnnotation,
        kind: str,
        message: str,
        severity: float,
        confidence: float,
        evidence: dict[str, Any] | None = None,
    ) -> Finding:
        """A finding on one annotation: located at its image and box."""
        return cls(
            kind=kind,
            message=message,
            severity=severity,
            confidence=confidence,
            image_id=ann.image_id,
            image_name=ann.image_name,
            annotation_id=ann.id,
            bbox=list(ann.bbox),
            evidence=evidence or {},
        )

    def fingerprint(self) -> str:
        """Stable identity across runs: the same problem on the same object is one finding."""
        where = (
            self.annotation_id if self.annotation_id is not None else [round(v / 8) for v in self.bbox or []]
        )
        key = f"{self.kind}|{self.image_id}|{where}|{self.evidence.get('key', '')}"
        return hashlib.sha256(key.encode()).hexdigest()[:32]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": round(self.severity, 3),
            "confidence": round(self.confidence, 3),
            "image": self.image_name,
            "annotation_id": self.annotation_id,
            "bbox": [round(v, 1) for v in self.bbox] if self.bbox else None,
            "message": self.message,
            "evidence": self.evidence,
        }


def box_iou(a: list[float], b: list[float]) -> float:
    """IoU of two ``[x, y, w, h]`` boxes."""
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    ih = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0
