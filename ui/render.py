"""Drawing annotations over an image: masks tinted per class, boxes and labels on top."""

from __future__ import annotations

import colorsys
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont


@dataclass
class Overlay:
    """One annotation as the canvas draws it."""

    id: int
    label: str
    bbox: list[float]  # [x, y, w, h]
    mask: dict[str, Any] | None = None  # COCO RLE
    score: float | None = None
    status: str = "proposed"
    selected: bool = False
    version: int = 1


def class_color(name: str) -> tuple[int, int, int]:
    """A stable, well-spread colour per class name (same name, same colour, everywhere)."""
    hue = int(hashlib.md5(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def _decode(rle: dict[str, Any]) -> np.ndarray:
    from pycocotools import mask as mask_utils

    counts = rle["counts"]
    return mask_utils.decode(
        {"size": rle["size"], "counts": counts.encode() if isinstance(counts, str) else counts}
    )


def render(image: Image.Image, overlays: Iterable[Overlay], *, alpha: float = 0.45) -> Image.Image:
    """Return a new RGB image; rejected annotations are drawn dashed-grey so they stay visible."""
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    items = list(overlays)
    for ov in items:
        if ov.mask is None:
            continue
        m = _decode(ov.mask).astype(bool)
        if m.shape != base.shape[:2]:
            continue  # a mask from another image size is a data error the audit reports
        color = np.array((160, 160, 160) if ov.status == "rejected" else class_color(ov.label), np.float32)
        base[m] = base[m] * (1 - alpha) + color * alpha
    out = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(out)
    # Lines and labels scale with the photo, so they stay readable when the canvas shrinks it.
    scale = max(1.0, max(out.size) / 800)
    font = ImageFont.load_default(size=round(13 * scale))
    tag_h = round(16 * scale)
    for ov in items:
        x, y, w, h = ov.bbox
        color = (160, 160, 160) if ov.status == "rejected" else class_color(ov.label)
        width = round((5 if ov.selected else 2) * scale)
        if ov.selected:
            draw.rectangle(
                [x - width, y - width, x + w + width, y + h + width], outline=(255, 255, 255), width=width
            )
        draw.rectangle([x, y, x + w, y + h], outline=color, width=width)
        tag = f"#{ov.id} {ov.label}" + (f" {ov.score:.2f}" if ov.score is not None else "")
        tw = draw.textlength(tag, font=font)
        top = max(0, y - tag_h)
        draw.rectangle([x, top, x + tw + 6 * scale, top + tag_h], fill=color)
        draw.text((x + 3 * scale, top + scale), tag, fill=(0, 0, 0), font=font)
    return out
