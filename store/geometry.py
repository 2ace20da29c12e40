"""The COCO geometry of a mask, derived once when an annotation is written.

``mask_geometry`` gives what export copies: bbox and area from the mask itself, and a
segmentation that is polygons where polygons carry the mask faithfully, else the compressed RLE.
The choice, in order:

1. A mask with holes stays RLE: COCO polygons are unioned, so they cannot express a hole.
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

from dataclasses import dataclass
from typing import Any

import numpy as np

from store.masks import area_from_rle, bbox_from_rle, mask_from_rle, normalize_rle, rle_iou
from store.polygons import mask_from_polygons, rle_from_polygons, simplify, to_coco, trace_outline

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
    if not 0.0 <= min_fidelity <= 1.0:
        raise ValueError(f"min_fidelity must be in [0, 1], got {min_fidelity}")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0 px, got {tolerance}")
    norm = normalize_rle(rle)
    area = area_from_rle(norm)
    if area == 0:
        raise ValueError(f"mask is empty (0 foreground pixels in {norm['size'][0]}x{norm['size'][1]})")
    bbox = bbox_from_rle(norm)
    as_rle = MaskGeometry(bbox=bbox, area=float(area), segmentation=norm, fidelity=1.0)

    h, w = norm["size"]
    x, y, bw, bh = (int(v) for v in bbox)
    x0, y0 = max(x - 1, 0), max(y - 1, 0)
    x1, y1 = min(x + bw + 1, w), min(y + bh + 1, h)
    crop = mask_from_rle(norm)[y0:y1, x0:x1]

    outline = trace_outline(crop)
    if outline.holes:
        return as_rle
    tried: set[float] = set()
    for tol in (tolerance, 0.0):
        if tol in tried:
            continue
        tried.add(tol)
        parts = simplify(outline.parts, tol)
        if not parts:
            continue
        fidelity = _iou(mask_from_polygons(to_coco(parts), y1 - y0, x1 - x0), crop)
        if fidelity >= min_fidelity:
            return MaskGeometry(
                bbox=bbox, area=float(area), segmentation=to_coco(parts, dx=x0, dy=y0), fidelity=fidelity
            )
    return as_rle


def segmentation_fidelity(segmentation: list[list[float]] | dict[str, Any], rle: dict[str, Any]) -> float:
    """IoU of a COCO segmentation (polygons or RLE), rasterised at the mask's size, vs the mask."""
    h, w = normalize_rle(rle)["size"]
    other = segmentation if isinstance(segmentation, dict) else rle_from_polygons(segmentation, h, w)
    return rle_iou(other, rle)
