"""Label by example: a detector made from a few boxes a person drew, for a class no model knows.

Region proposals are sliding windows at the examples' sizes (each example's own, and their
median at 0.8, 1 and 1.25 times; a third of a window apart); each window is embedded with the
verifier's backbone (``embed``: unit feature vectors) and scored by its cosine similarity to the
nearest example. Similarity alone means little (two photo crops are never orthogonal), so it is
measured against the background: the windows of the example images that overlap no example give
the similarity a non-object reaches (its 99th percentile, ``floor``), and a window's confidence is
how far it rises from there towards an exact copy, ``(sim - floor) / (1 - floor)``. Overlapping
windows are thinned by NMS.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from tools.backends.base import Detections
from tools.backends.vocab import UnknownLabel

SCALES = (0.8, 1.0, 1.25)
STRIDE = 1 / 3  # of the window's side
NMS_IOU = 0.3
MAX_SIZES = 5  # window sizes per class
FLOOR_PERCENTILE = 99


class Embedder(Protocol):
    model_id: str

    def embed(self, crops: list[np.ndarray]) -> np.ndarray: ...


class NoExamples(UnknownLabel):
    """A label with no examples to look for."""

    def __init__(self, label: str, labels: list[str]) -> None:
        ValueError.__init__(self, f"no examples of {label!r} (examples given for: {', '.join(labels)})")
        self.label = label


def window_sizes(sizes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(h, w) of the windows for examples of ``sizes`` (h, w): each example's own size, and the
    median size at each of ``SCALES``; at most ``MAX_SIZES`` (the ones nearest the median)."""
    mh, mw = (float(v) for v in np.median(np.asarray(sizes, np.float32).reshape(-1, 2), axis=0))
    found = {(max(8, round(h)), max(8, round(w))) for h, w in sizes}
    found |= {(max(8, round(mh * s)), max(8, round(mw * s))) for s in SCALES}
    nearest = sorted(found, key=lambda hw: abs(np.log(hw[0] * hw[1] / (mh * mw))))[:MAX_SIZES]
    return sorted(nearest)


def windows(shape: tuple[int, ...], sizes: list[tuple[int, int]]) -> np.ndarray:
    """Boxes ``(n, 4)`` xyxy of every window of ``sizes`` that fits in an image of ``shape``."""
    height, width = shape[:2]
    out = []
    for h, w in sizes:
        if h > height or w > width:
            continue
        ys = np.unique(np.append(np.arange(0, height - h + 1, max(1, round(h * STRIDE))), height - h))
        xs = np.unique(np.append(np.arange(0, width - w + 1, max(1, round(w * STRIDE))), width - w))
        out += [(x, y, x + w, y + h) for y in ys for x in xs]
    return np.asarray(out, np.float32).reshape(-1, 4)


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box with each of ``boxes``."""
    x1, y1 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x2, y2 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area - inter, 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float = NMS_IOU) -> list[int]:
    order, keep = list(np.argsort(-scores)), []
    while order:
        best = order.pop(0)
        keep.append(best)
        order = [i for i in order if iou(boxes[best], boxes[i : i + 1])[0] < threshold]
    return keep


class ExampleDetector:
    """Finds regions like the examples.

    Args:
        embedder: unit feature vectors per crop (``LiteVerifier.embed``).
        examples: label -> crops of that class (one to a few).
        background: crops of non-objects (windows of the example images that overlap no example).
    """

    def __init__(
        self, embedder: Embedder, examples: dict[str, list[np.ndarray]], background: list[np.ndarray]
    ) -> None:
        if not examples or not all(examples.values()):
            raise ValueError(f"expected at least one example crop per class, got {sorted(examples)}")
        self.model_id = f"by-example+{embedder.model_id}"
        self._embedder = embedder
        self._refs = {label: embedder.embed(crops) for label, crops in examples.items()}
        self._sizes = {label: window_sizes([c.shape[:2] for c in crops]) for label, crops in examples.items()}
        self.floor = {
            label: float(np.percentile(self._similarity(background, refs), FLOOR_PERCENTILE))
            if background
            else 0.0
            for label, refs in self._refs.items()
        }

    def _similarity(self, crops: list[np.ndarray], refs: np.ndarray) -> np.ndarray:
        return (self._embedder.embed(crops) @ refs.T).max(axis=1) if crops else np.zeros(0, np.float32)

    def detect(self, image: np.ndarray, prompts: list[str], threshold: float) -> Detections:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"image must be RGB uint8 (h, w, 3), got shape {image.shape} dtype {image.dtype}"
            )
        for prompt in prompts:
            if prompt not in self._refs:
                raise NoExamples(prompt, sorted(self._refs))
        found: list[tuple[np.ndarray, float, str]] = []
        for prompt in prompts:
            boxes = windows(image.shape, self._sizes[prompt])
            if not len(boxes):
                continue
            crops = [image[int(y1) : int(y2), int(x1) : int(x2)] for x1, y1, x2, y2 in boxes]
            floor = self.floor[prompt]
            conf = np.clip((self._similarity(crops, self._refs[prompt]) - floor) / (1 - floor), 0, 1)
            kept = conf >= threshold
            boxes, conf = boxes[kept], conf[kept]
            found += [(boxes[i], float(conf[i]), prompt) for i in nms(boxes, conf)]
        if not found:
            return Detections.empty()
        return Detections(
            xyxy=np.stack([b for b, _c, _l in found]).astype(np.float32),
            confidence=np.asarray([c for _b, c, _l in found], np.float32),
            label=[lbl for _b, _c, lbl in found],
        )


def crop_xywh(image: np.ndarray, bbox: Any) -> np.ndarray:
    """The pixels of an ``[x, y, w, h]`` box, clipped to the image."""
    x, y, w, h = (int(round(v)) for v in bbox)
    return image[max(0, y) : max(0, y + h), max(0, x) : max(0, x + w)]
