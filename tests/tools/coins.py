"""A small real-photo project for a class COCO-80 does not have: coins from ``skimage.data.coins()``
(a real photograph of coins) pasted onto crops of real colour photos from ``skimage.data``.

The coins are cut out with their own segmentation mask (Otsu threshold, holes filled), so what is
pasted is the coin and not its rectangle, and each pasted box is known exactly. Deterministic for a
given seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

BACKGROUNDS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "retina", "cat")


@dataclass(frozen=True)
class Photo:
    path: Path
    boxes: list[list[float]]  # [x, y, w, h] in pixels, one per pasted coin


def coin_cutouts() -> list[tuple[np.ndarray, np.ndarray]]:
    """(grey pixels, bool mask) of each coin of ``skimage.data.coins()``."""
    from scipy import ndimage as ndi
    from skimage import data, filters, measure, morphology

    image = data.coins()
    smooth = filters.gaussian(image, 2)
    binary = morphology.closing(smooth > filters.threshold_otsu(smooth) * 0.9, morphology.disk(3))
    labels = measure.label(ndi.binary_fill_holes(binary))
    out = []
    for region in measure.regionprops(labels):
        if 400 < region.area < 6000:
            r0, c0, r1, c1 = region.bbox
            out.append((image[r0:r1, c0:c1], region.image))
    return out


def backgrounds() -> list[np.ndarray]:
    from skimage import data

    out = []
    for name in BACKGROUNDS:
        image = np.asarray(getattr(data, name)())
        if image.ndim == 2:
            image = np.stack([image] * 3, axis=-1)
        out.append(image[..., :3].astype(np.uint8))
    return out


def make_photos(folder: Path, n: int, *, size: int = 192, seed: int = 0) -> list[Photo]:
    """Write ``n`` JPEG photos of 1-3 coins on real backgrounds to ``folder``."""
    from PIL import Image as PILImage

    rng = np.random.default_rng(seed)
    coins, grounds = coin_cutouts(), backgrounds()
    folder.mkdir(parents=True, exist_ok=True)
    photos = []
    for i in range(n):
        ground = grounds[i % len(grounds)]
        h, w = ground.shape[:2]
        side = int(rng.integers(min(h, w) // 3, min(h, w)))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        canvas = np.asarray(PILImage.fromarray(ground[y : y + side, x : x + side]).resize((size, size)))
        canvas = canvas.copy()
        boxes: list[list[float]] = []
        for _ in range(int(rng.integers(1, 4))):
            grey, mask = coins[int(rng.integers(len(coins)))]
            scale = float(rng.uniform(0.5, 1.0))
            ch, cw = max(int(grey.shape[0] * scale), 8), max(int(grey.shape[1] * scale), 8)
            patch = np.asarray(PILImage.fromarray(grey).resize((cw, ch)))
            keep = np.asarray(PILImage.fromarray(mask.astype(np.uint8) * 255).resize((cw, ch))) > 127
            for _try in range(20):
                py, px = int(rng.integers(0, size - ch)), int(rng.integers(0, size - cw))
                if all(px + cw <= bx or bx + bw <= px or py + ch <= by or by + bh <= py
                       for bx, by, bw, bh in boxes):  # fmt: skip
                    break
            else:
                continue
            tint = rng.uniform(0.8, 1.2, size=3)
            rgb = np.clip(patch[..., None] * tint, 0, 255).astype(np.uint8)
            region = canvas[py : py + ch, px : px + cw]
            region[keep] = rgb[keep]
            ys, xs = np.nonzero(keep)
            boxes.append([float(px + xs.min()), float(py + ys.min()),
                          float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)])  # fmt: skip
        path = folder / f"coins-{i:03d}.jpg"
        PILImage.fromarray(canvas).save(path, quality=92)
        photos.append(Photo(path, boxes))
    return photos
