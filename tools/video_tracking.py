"""Following objects through frames: one ByteTrack per class, on the sampled frames' clock.

The tracker is roboflow ``trackers``' ``ByteTrackTracker``, the successor of
``supervision.ByteTrack`` (which supervision 0.30 removed); it speaks ``sv.Detections``. ByteTrack
names a track only when it matches a second time, so :func:`born` recovers each new track's first
detection from the previous frame, letting the caller write a track's first frame too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(eq=False)  # compared by identity: it holds an array
class Tracked:
    label: str
    tracker_id: int  # -1: a detection that started a track not named yet
    box: np.ndarray  # xyxy
    confidence: float


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def shift_mask(mask: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``mask`` moved by ``(dx, dy)`` pixels; what leaves the frame is dropped."""
    h, w = mask.shape
    out = np.zeros_like(mask)
    src = mask[max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
    out[max(0, dy) : max(0, dy) + src.shape[0], max(0, dx) : max(0, dx) + src.shape[1]] = src
    return out


@dataclass
class FrameTracker:
    """The trackers of one video: deterministic, so replaying the same frames rebuilds them."""

    rate: float  # frames per second of the sampled frames
    trackers: dict[str, Any] = field(default_factory=dict)

    def step(
        self, detector: Any, rgb: np.ndarray, labels: list[str], threshold: float, t: float | None
    ) -> tuple[list[Tracked], list[Tracked]]:
        """Detect and track one frame: its tracked objects, and the detections that started a track."""
        import supervision as sv

        # Boxes down to half the threshold feed ByteTrack's second, low-confidence association
        # (keeps occluded objects on their track); only the threshold may start a track.
        dets = detector.detect(rgb, labels, max(0.05, threshold / 2))
        out: list[Tracked] = []
        spawned: list[Tracked] = []
        for label in labels:
            rows = [i for i, name in enumerate(dets.label) if name == label]
            given = sv.Detections(
                xyxy=dets.xyxy[rows].reshape(-1, 4).astype(np.float32),
                confidence=dets.confidence[rows].astype(np.float32),
                class_id=np.zeros(len(rows), dtype=int),
            )
            result = self._tracker(label, threshold).update(given, timestamp=t)
            for box, conf, tid in zip(result.xyxy, result.confidence, result.tracker_id, strict=True):
                obj = Tracked(label, int(tid), np.asarray(box, dtype=np.float32), float(conf))
                if tid >= 0:
                    out.append(obj)
                elif conf >= threshold:
                    spawned.append(obj)
        return out, spawned

    def _tracker(self, label: str, threshold: float) -> Any:
        from trackers import ByteTrackTracker

        if label not in self.trackers:
            self.trackers[label] = ByteTrackTracker(
                track_activation_threshold=threshold,
                high_conf_det_threshold=threshold,
                minimum_consecutive_frames=1,
                lost_track_buffer=30,
                # Its Kalman steps are frames at this rate: left at its 30 fps default, every
                # 0.2 s gap of a 5 fps sample predicts six steps ahead and tracks are lost
                # (vtest.avi, 50 frames: 31 tracks instead of 20).
                frame_rate=self.rate,
            )
        return self.trackers[label]


def born(known: set[tuple[str, int]], spawned: list[Tracked], tracked: list[Tracked]) -> list[Tracked]:
    """Tracks named on this frame (not in ``known``), as the detections of the previous frame that
    started them (taken out of ``spawned``); matched by class and best overlap."""
    out = []
    for obj in tracked:
        if (obj.label, obj.tracker_id) in known:
            continue
        same = [s for s in spawned if s.label == obj.label]
        best = max(same, key=lambda s: iou(s.box, obj.box), default=None)
        if best is not None and iou(best.box, obj.box) > 0:
            spawned.remove(best)
            out.append(Tracked(obj.label, obj.tracker_id, best.box, best.confidence))
    return out
