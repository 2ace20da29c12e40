"""A click on the lite stack means the detected object under it.

The lite segmenter answers box prompts well but has no model that understands a point: from a click
it can only guess an extent (:mod:`tools.backends.click_box`), and on a many-coloured object such
as a bus seen close up that guess is a window or a wheel, or nothing. The detector already knows
where whole objects are, so a click that lands inside a detected box is answered as that box: the
smallest box that holds every positive point and no negative one. A click on something the detector
does not know (a plain object of no COCO class) still goes to the segmenter's own point search.

SAM 2 takes points natively; segmenters say so with ``native_points`` (default True), and only the
lite segmenter sets it False, so this step runs only where it helps.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

import numpy as np

CLICK_THRESHOLD = 0.3  # detections below this are too unsure to stand for the object clicked
_CACHE_SIZE = 8  # images whose detections are kept: clicks come in runs on one image
_cache: OrderedDict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]] = OrderedDict()


def wants_object_boxes(segmenter: Any) -> bool:
    """Whether this segmenter's point prompts should be turned into a detected box first."""
    return not getattr(segmenter, "native_points", True)


def _detected(detector: Any, image: np.ndarray, key: Any) -> tuple[np.ndarray, np.ndarray]:
    """(boxes (n, 4), scores (n,)) of every object the detector can name, cached per image."""
    from tools.backends.vocab import COCO80

    # the id alone is not enough: two stores in one process (tests, a restored backup) reuse ids
    sample = hashlib.blake2b(np.ascontiguousarray(image[::17, ::17]).tobytes(), digest_size=8).hexdigest()
    cache_key = (getattr(detector, "model_id", type(detector).__name__), key, image.shape, sample)
    if key is not None and cache_key in _cache:
        _cache.move_to_end(cache_key)
        return _cache[cache_key]
    found = detector.detect(image, list(COCO80), CLICK_THRESHOLD)
    result = (np.asarray(found.xyxy, np.float32).reshape(-1, 4), np.asarray(found.confidence, np.float32))
    if key is not None:
        _cache[cache_key] = result
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return result


def _holds(boxes: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(n boxes,) bool: the box holds every point."""
    if len(points) == 0:
        return np.ones(len(boxes), bool)
    x, y = points[:, 0][None, :], points[:, 1][None, :]
    inside = (boxes[:, 0:1] <= x) & (x <= boxes[:, 2:3]) & (boxes[:, 1:2] <= y) & (y <= boxes[:, 3:4])
    return inside.all(axis=1)


def _touches(boxes: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(n boxes,) bool: the box holds at least one of the points."""
    if len(points) == 0:
        return np.zeros(len(boxes), bool)
    x, y = points[:, 0][None, :], points[:, 1][None, :]
    inside = (boxes[:, 0:1] <= x) & (x <= boxes[:, 2:3]) & (boxes[:, 1:2] <= y) & (y <= boxes[:, 3:4])
    return inside.any(axis=1)


def object_box_at(
    detector: Any, image: np.ndarray, points: np.ndarray, labels: np.ndarray, key: Any = None
) -> list[float] | None:
    """The smallest detected box holding every positive point and no negative one, or None.

    Args:
        detector: the stack's detector (``detect(image, prompts, threshold)``).
        image: RGB uint8 (h, w, 3).
        points: (n, 2) click points in pixels; labels: (n,) 1 on the object, 0 background.
        key: the image's id, to reuse its detections for the next click on it.
    """
    if detector is None:
        return None
    try:
        boxes, _scores = _detected(detector, image, key)
    except (ValueError, KeyError):  # a detector with another vocabulary: fall back to the segmenter
        return None
    points = np.asarray(points, np.float32).reshape(-1, 2)
    labels = np.asarray(labels).reshape(-1)
    fits = _holds(boxes, points[labels == 1]) & ~_touches(boxes, points[labels == 0])
    if not fits.any():
        return None
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    best = int(np.flatnonzero(fits)[np.argmin(areas[fits])])
    return [float(v) for v in boxes[best]]
