"""A small ground-truth set for click and box prompts: real photos whose objects have exact masks.

Both photos come with Debian's ``opencv-doc`` (``/usr/share/doc/opencv-doc/examples/data/``) and show
plain objects on a plain background, so a threshold draws each object's outline exactly (checked by
eye on overlays of every mask):

- ``pca_test1.jpg`` (800x600): six dark plastic parts on a back-lit white panel. Inside the panel
  (the largest bright region, holes filled), an object is a dark (grey < 110) part of at least
  2,000 px, holes filled.
- ``smarties.png`` (413x356): sweets on white paper. A sweet is a saturated (S > 90) or dark (V < 90)
  part of at least 300 px, holes filled (its highlight), that is convex (solidity > 0.95: two
  touching sweets are not one object) and does not touch the image border (cut off).

Each object's click is its innermost pixel (the maximum of the distance to its outline: "the middle
of the object"), and its box is its tight bounding box (what a user would drag).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")


@dataclass(frozen=True)
class Truth:
    """One object of a photo: its exact mask, the click in its middle and its tight box."""

    photo: str
    mask: np.ndarray
    click: tuple[int, int]
    box: tuple[int, int, int, int]


def _parts(mask: np.ndarray, min_area: int) -> list[np.ndarray]:
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8))
    return [labels == i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= min_area]


def _fill(mask: np.ndarray) -> np.ndarray:
    """The mask with its holes filled: everything not reachable from the corner outside it."""
    import cv2

    h, w = mask.shape
    reach = mask.astype(np.uint8)
    cv2.floodFill(reach, np.zeros((h + 2, w + 2), np.uint8), (0, 0), 1)
    return mask | (reach == 0)


def _open(mask: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0


def _solidity(mask: np.ndarray) -> float:
    import cv2

    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return float(mask.sum() / cv2.contourArea(cv2.convexHull(max(contours, key=cv2.contourArea))))


def _on_border(mask: np.ndarray) -> bool:
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def load_rgb(name: str) -> np.ndarray:
    import cv2

    path = OPENCV_DATA / name
    image = cv2.imread(str(path))
    if image is None:
        raise FileNotFoundError(f"{path} missing: install Debian's opencv-doc")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _masks(name: str, rgb: np.ndarray) -> list[np.ndarray]:
    import cv2

    if name == "pca_test1.jpg":
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        panel = _fill(max(_parts(grey > 150, 1000), key=lambda m: int(m.sum())))
        return [_fill(m) for m in _parts(_open((grey < 110) & panel), 2000)]
    if name == "smarties.png":
        hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
        sweets = _open((hsv[..., 1] > 90) | (hsv[..., 2] < 90))
        filled = [_fill(m) for m in _parts(sweets, 300)]
        return [m for m in filled if not _on_border(m) and _solidity(m) > 0.95]
    raise ValueError(f"no ground truth for {name!r}: expected pca_test1.jpg or smarties.png")


def truths(name: str, rgb: np.ndarray) -> list[Truth]:
    import cv2

    out = []
    for mask in _masks(name, rgb):
        inside = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
        y, x = np.unravel_index(int(inside.argmax()), inside.shape)
        ys, xs = np.nonzero(mask)
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        out.append(Truth(name, mask, (int(x), int(y)), box))
    return out


PHOTOS = ("pca_test1.jpg", "smarties.png")
COUNTS = {"pca_test1.jpg": 6, "smarties.png": 8}  # objects found when the masks were checked by eye


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = int((a | b).sum())
    return float((a & b).sum() / union) if union else 1.0
