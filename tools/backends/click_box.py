"""From a click to the box of the object under it; the box is then answered like a drawn one.

A salient-object model (or GrabCut) asked about a small window around a click sees only a piece of
a large object, and returns a piece or nothing: clicking the middle of a plain object used to give
less than half of it. Two steps find the object's extent instead:

1. :func:`flood_box`: the region of similar colour around the click (a fixed-range flood fill on a
   median-smoothed copy). A plain object on a plain background is exactly that region. A region
   too small (texture) or too large (it leaked into the background) says nothing.
2. :func:`box_from_click`: segment a window (the flood region's box, else a square around the
   point), take the connected part under the point, and while that part runs into a window edge
   that is not the image's edge, extend the window past that edge (doubling its extent on that
   side) and look again.

:func:`click_to_box` combines them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Box = tuple[int, int, int, int]
WindowMask = Callable[[Box], np.ndarray]  # a window -> a full-size bool mask of what it holds


def square_around(point: np.ndarray, side: float, width: int, height: int) -> Box:
    """A square of ``side`` pixels centred on ``point``, shifted (not cut) to lie inside the image."""
    side_x, side_y = min(side, width), min(side, height)
    x1 = int(round(min(max(point[0] - side_x / 2, 0), width - side_x)))
    y1 = int(round(min(max(point[1] - side_y / 2, 0), height - side_y)))
    return x1, y1, min(width, x1 + int(round(side_x))), min(height, y1 + int(round(side_y)))


def part_at(mask: np.ndarray, point: np.ndarray, radius: int = 3) -> np.ndarray | None:
    """The connected part of ``mask`` under ``point`` (or within ``radius`` px of it), else None."""
    import cv2

    h, w = mask.shape
    x, y = min(w - 1, max(0, int(point[0]))), min(h - 1, max(0, int(point[1])))
    y1, y2, x1, x2 = max(0, y - radius), min(h, y + radius + 1), max(0, x - radius), min(w, x + radius + 1)
    if not mask[y1:y2, x1:x2].any():
        return None
    _, parts = cv2.connectedComponents(mask.astype(np.uint8))
    label = parts[y, x]
    if label == 0:  # near, not on: take the most common part in the neighbourhood
        near = parts[y1:y2, x1:x2]
        label = np.bincount(near[near > 0]).argmax()
    return parts == label


def bbox_of(mask: np.ndarray) -> Box:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def flood_box(
    image: np.ndarray,
    point: np.ndarray,
    *,
    tolerance: int = 24,
    min_area: float = 0.002,
    max_area: float = 0.5,
    margin: float = 0.05,
) -> Box | None:
    """The box of the similar-colour region around ``point``, or None if its size rules it out.

    Args:
        image: RGB uint8 (h, w, 3).
        point: (x, y) of the click.
        tolerance: largest per-channel difference from the click's (smoothed) colour.
        min_area, max_area: bounds of the region's area as fractions of the image's.
        margin: added around the region's box on each side, as a fraction of its width/height.
    """
    import cv2

    h, w = image.shape[:2]
    smooth = cv2.medianBlur(np.ascontiguousarray(image), 5)
    region = np.zeros((h + 2, w + 2), np.uint8)
    seed = (min(w - 1, max(0, int(point[0]))), min(h - 1, max(0, int(point[1]))))
    flags = 4 | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (1 << 8)
    cv2.floodFill(smooth, region, seed, (0, 0, 0), (tolerance,) * 3, (tolerance,) * 3, flags)
    area = int(region.sum())
    if not min_area * h * w <= area <= max_area * h * w:
        return None
    x1, y1, x2, y2 = bbox_of(region[1:-1, 1:-1] > 0)
    dx, dy = round((x2 - x1) * margin), round((y2 - y1) * margin)
    return max(0, x1 - dx), max(0, y1 - dy), min(w, x2 + dx), min(h, y2 + dy)


def box_from_click(
    point: np.ndarray, shape: tuple[int, int], window_mask: WindowMask, *, start: Box, rounds: int = 4
) -> Box | None:
    """The box of the object under ``point``, or None when nothing is found there.

    Args:
        point: (x, y) of the click.
        shape: (height, width) of the image.
        window_mask: segments one window (a box) and returns a full-size mask.
        start: the first window.
        rounds: windows tried at most; the last part found is used even if it still touches an edge.
    """
    h, w = shape
    window = start
    box: Box | None = None
    for _ in range(rounds):
        part = part_at(window_mask(window), point)
        if part is None:
            return box
        box = bbox_of(part)
        x1, y1, x2, y2 = window
        bw, bh = x2 - x1, y2 - y1
        grown = (
            max(0, x1 - bw) if box[0] <= x1 + 1 and x1 > 0 else x1,
            max(0, y1 - bh) if box[1] <= y1 + 1 and y1 > 0 else y1,
            min(w, x2 + bw) if box[2] >= x2 - 1 and x2 < w else x2,
            min(h, y2 + bh) if box[3] >= y2 - 1 and y2 < h else y2,
        )
        if grown == window:
            return box
        window = grown
    return box


def click_to_box(
    image: np.ndarray,
    point: np.ndarray,
    window_mask: WindowMask,
    *,
    start_side: float,
    grow_flood: bool = True,
) -> Box | None:
    """The box to segment for a click: the flood region's box, grown where the object goes on.

    The flood region of a multi-coloured object is one of its parts (a jacket, not the person), so
    the search starts from that region's box and grows past every edge the part under the click
    runs into; it never shrinks below the flood box (a salient-object mask may cover only part of a
    plain object the flood fill outlined exactly). Without a flood region it starts from a square
    of ``start_side`` x the image's shorter side.

    ``grow_flood=False`` takes the flood box as it is: GrabCut's mask always reaches the edges of
    its rectangle, so there "touches the window edge" says nothing about the object (measured: the
    grown boxes lowered GrabCut's click IoU on the truth set).
    """
    h, w = image.shape[:2]
    flood = flood_box(image, point)
    if flood is not None and not grow_flood:
        return flood
    start = flood or square_around(point, start_side * min(h, w), w, h)
    found = box_from_click(point, (h, w), window_mask, start=start)
    if flood is None or found is None:
        return found or flood
    return min(flood[0], found[0]), min(flood[1], found[1]), max(flood[2], found[2]), max(flood[3], found[3])
