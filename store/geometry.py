"""The COCO geometry of a mask, derived once when an annotation is written.

``mask_geometry`` gives what export copies: bbox and area from the mask itself, and a
segmentation that is polygons where polygons carry the mask faithfully, else the compressed RLE.
The choice, in order:

1. A mask with holes stays RLE: readers union a segmentation's polygons, so a hole cannot be a
   polygon of its own (YOLO, which needs polygons, gets bridged rings: :func:`single_polygon`).
2. The pixel-corner outline of each 8-connected part, simplified to ``tolerance`` px
   (Douglas-Peucker), if re-rasterised it has IoU >= ``min_fidelity`` with the mask.
3. Else the unsimplified corner outline (thin lines and tiny objects, where simplification eats
   whole pixels): it re-rasterises exactly, so it is kept when it passes the same bar.
4. Else RLE.

``fidelity`` is the IoU of the chosen segmentation, re-rasterised by pycocotools, against the
mask (1.0 for RLE). All work happens on the box crop plus one pixel, not the full image: the
polygons never leave the box, so the IoU on the crop equals the IoU at image size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from store.masks import area_from_rle, bbox_from_rle, mask_from_rle, normalize_rle, rle_iou
from store.polygons import join_rings, mask_from_polygons, rle_from_polygons, simplify, to_coco, trace_outline

DEFAULT_TOLERANCE = 1.0
DEFAULT_MIN_FIDELITY = 0.98


@dataclass(frozen=True)
class MaskGeometry:
    bbox: list[float]  # [x, y, w, h] in pixels
    area: float  # foreground pixel count
    segmentation: list[list[float]] | dict[str, Any]  # COCO polygons, or RLE with str counts
    fidelity: float  # IoU of ``segmentation`` re-rasterised vs the mask

    @property
    def is_rle(self) -> bool:
        return isinstance(self.segmentation, dict)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b)) / union if union else 1.0


def mask_geometry(
    rle: dict[str, Any],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    min_fidelity: float = DEFAULT_MIN_FIDELITY,
) -> MaskGeometry:
    """Derive bbox, area, COCO segmentation and its fidelity from a COCO RLE mask.

    Args:
        rle: COCO RLE (compressed counts as str/bytes, or uncompressed counts as a list).
        tolerance: Douglas-Peucker tolerance in pixels for the polygon outline; 0 keeps every corner.
        min_fidelity: the lowest IoU (re-rasterised polygons vs mask) for which polygons are used.

    Raises:
        ValueError: the mask is empty, malformed, or an argument is out of range.
    """
    norm, area, bbox = _checked(rle, tolerance, min_fidelity)
    as_rle = MaskGeometry(bbox=bbox, area=float(area), segmentation=norm, fidelity=1.0)
    crop, x0, y0 = _crop(norm, bbox)
    outline = trace_outline(crop)
    if outline.holes:
        return as_rle
    found = _first_faithful(crop, lambda tol: to_coco(simplify(outline.parts, tol)), tolerance, min_fidelity)
    if found is None:
        return as_rle
    polygons, fidelity = found
    shifted = [(np.asarray(p).reshape(-1, 2) + (x0, y0)).ravel().tolist() for p in polygons]
    return MaskGeometry(bbox=bbox, area=float(area), segmentation=shifted, fidelity=fidelity)


def single_polygon(
    rle: dict[str, Any],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    min_fidelity: float = DEFAULT_MIN_FIDELITY,
) -> tuple[list[float], float]:
    """The mask as ONE polygon, for formats with one polygon per instance (YOLO-seg).

    Parts and holes are joined through zero-width bridges (see :func:`store.polygons.join_rings`),
    so with even-odd filling, as ultralytics and pycocotools rasterise, holes stay holes. Falls back
    to the unsimplified outline when the simplified one misses ``min_fidelity``; that one is exact.
    Returns ``(flat polygon in image pixels, fidelity)``.
    """
    norm, _area, bbox = _checked(rle, tolerance, min_fidelity)
    crop, x0, y0 = _crop(norm, bbox)
    outline = trace_outline(crop)

    def joined(tol: float) -> list[list[float]]:
        rings = simplify(outline.parts, tol)
        return to_coco([join_rings(rings + simplify(outline.holes, tol))]) if rings else []

    # Polygons are all YOLO can carry: when no outline reaches min_fidelity, the exact one is used.
    found = _first_faithful(crop, joined, tolerance, min_fidelity) or _first_faithful(crop, joined, 0.0, 0.0)
    assert found is not None, "the exact outline of a non-empty mask always has a polygon"
    (polygon,), fidelity = found
    return (np.asarray(polygon).reshape(-1, 2) + (x0, y0)).ravel().tolist(), fidelity


def _checked(
    rle: dict[str, Any], tolerance: float, min_fidelity: float
) -> tuple[dict[str, Any], int, list[float]]:
    if not 0.0 <= min_fidelity <= 1.0:
        raise ValueError(f"min_fidelity must be in [0, 1], got {min_fidelity}")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0 px, got {tolerance}")
    norm = normalize_rle(rle)
    area = area_from_rle(norm)
    if area == 0:
        raise ValueError(f"mask is empty (0 foreground pixels in {norm['size'][0]}x{norm['size'][1]})")
    return norm, area, bbox_from_rle(norm)


def _crop(norm: dict[str, Any], bbox: list[float]) -> tuple[np.ndarray, int, int]:
    """The mask on its box plus one pixel (the polygons never leave the box): (crop, x0, y0)."""
    h, w = norm["size"]
    x, y, bw, bh = (int(v) for v in bbox)
    x0, y0 = max(x - 1, 0), max(y - 1, 0)
    x1, y1 = min(x + bw + 1, w), min(y + bh + 1, h)
    return mask_from_rle(norm)[y0:y1, x0:x1], x0, y0


def _first_faithful(
    crop: np.ndarray, polygons_at: Callable[[float], list[list[float]]], tolerance: float, min_fidelity: float
) -> tuple[list[list[float]], float] | None:
    """Polygons at ``tolerance``, else unsimplified, whichever first reaches ``min_fidelity``."""
    for tol in dict.fromkeys((tolerance, 0.0)):
        polygons = polygons_at(tol)
        if polygons:
            fidelity = _iou(mask_from_polygons(polygons, *crop.shape), crop)
            if fidelity >= min_fidelity:
                return polygons, fidelity
    return None


def segmentation_fidelity(segmentation: list[list[float]] | dict[str, Any], rle: dict[str, Any]) -> float:
    """IoU of a COCO segmentation (polygons or RLE), rasterised at the mask's size, vs the mask."""
    h, w = normalize_rle(rle)["size"]
    other = segmentation if isinstance(segmentation, dict) else rle_from_polygons(segmentation, h, w)
    return rle_iou(other, rle)
