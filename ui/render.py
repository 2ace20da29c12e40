"""Drawing annotations over an image: masks tinted per class (per track on a video frame), boxes and
labels on top."""

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
    track_id: int | None = None  # one object through a video: drawn in its track's colour


GOLDEN = 0.618033988749895  # hue step between consecutive track ids: neighbours never look alike


def class_color(name: str) -> tuple[int, int, int]:
    """A stable, well-spread colour per class name (same name, same colour, everywhere)."""
    hue = int(hashlib.md5(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def track_color(track_id: int) -> tuple[int, int, int]:
    """A colour per track id, the same on every frame; consecutive ids get far-apart hues."""
    hue = (track_id * GOLDEN) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.8, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def color_of(ov: Overlay) -> tuple[int, int, int]:
    """Grey when rejected, else the track's colour where it has one, else its class colour."""
    if ov.status == "rejected":
        return 160, 160, 160
    return track_color(ov.track_id) if ov.track_id is not None else class_color(ov.label)


def tag_of(ov: Overlay) -> str:
    """The label drawn on the box: ``T3 #12 person 0.87`` (the track id first on video frames)."""
    track = f"T{ov.track_id} " if ov.track_id is not None else ""
    return f"{track}#{ov.id} {ov.label}" + (f" {ov.score:.2f}" if ov.score is not None else "")


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
        color = np.array(color_of(ov), np.float32)
        base[m] = base[m] * (1 - alpha) + color * alpha
    out = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(out)
    # Lines and labels scale with the photo, so they stay readable when the canvas shrinks it.
    scale = max(1.0, max(out.size) / 800)
    font = ImageFont.load_default(size=round(13 * scale))
    tag_h = round(16 * scale)
    for ov in items:
        x, y, w, h = ov.bbox
        color = color_of(ov)
        width = round((5 if ov.selected else 2) * scale)
        if ov.selected:
            draw.rectangle(
                [x - width, y - width, x + w + width, y + h + width], outline=(255, 255, 255), width=width
            )
        draw.rectangle([x, y, x + w, y + h], outline=color, width=width)
        tag = tag_of(ov)
        tw = draw.textlength(tag, font=font)
        top = max(0, y - tag_h)
        draw.rectangle([x, top, x + tw + 6 * scale, top + tag_h], fill=color)
        draw.text((x + 3 * scale, top + scale), tag, fill=(0, 0, 0), font=font)
    return out
