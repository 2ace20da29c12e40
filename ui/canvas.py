"""The image canvas: the rendered overlays in a gr.HTML with a little JS for clicks and box drags.

Gradio has no component that reports both a click and a dragged rectangle on an image, so the
canvas is an ``<img>`` (overlays drawn server-side by :func:`ui.render.render`) inside a gr.HTML
whose script turns mouse gestures into one ``select`` event carrying image-pixel coordinates:
``{"kind": "point", "x", "y"}`` for a click, ``{"kind": "box", "box": [x1, y1, x2, y2]}`` for a
drag. The polygon being drawn is an SVG polyline on top.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

import gradio as gr
from PIL import Image

MAX_SIDE = 1280  # the picture sent to the browser; coordinates are always in original pixels
DRAG_PX = 6  # a gesture shorter than this (screen pixels) is a click

CSS = """
.lw-canvas { position: relative; display: inline-block; max-width: 100%; cursor: crosshair;
  user-select: none; line-height: 0; }
.lw-canvas img { max-width: 100%; max-height: 70vh; display: block; }
.lw-canvas svg { position: absolute; inset: 0; width: 100%; height: 100%; pointer-events: none; }
.lw-band { position: absolute; border: 2px dashed #fff; outline: 1px solid #000; display: none;
  pointer-events: none; }
.lw-tracks { line-height: 1.8; margin-top: 4px; }
.lw-track { display: inline-block; padding: 0 6px; margin-right: 4px; border-radius: 3px; color: #000;
  font-size: 0.85em; }
.lw-empty { padding: 4em 1em; text-align: center; color: #888; border: 1px dashed #aaa; }
"""

JS = f"""
let start = null;
const band = () => element.querySelector('.lw-band');
const where = (e) => {{
  const box = element.querySelector('.lw-canvas');
  const img = element.querySelector('.lw-canvas img');
  const r = img.getBoundingClientRect();
  const c = box.getBoundingClientRect();
  const w = +box.dataset.w, h = +box.dataset.h;
  const cx = Math.min(Math.max(e.clientX, r.left), r.right);
  const cy = Math.min(Math.max(e.clientY, r.top), r.bottom);
  return {{x: (cx - r.left) / r.width * w, y: (cy - r.top) / r.height * h,
           sx: cx - c.left, sy: cy - c.top, px: e.clientX, py: e.clientY}};
}};
element.addEventListener('mousedown', (e) => {{
  if (!e.target.closest('.lw-canvas img') || e.button !== 0) return;
  e.preventDefault();
  start = where(e);
}});
window.addEventListener('mousemove', (e) => {{
  if (!start) return;
  const p = where(e), b = band();
  Object.assign(b.style, {{display: 'block', left: Math.min(start.sx, p.sx) + 'px',
    top: Math.min(start.sy, p.sy) + 'px', width: Math.abs(p.sx - start.sx) + 'px',
    height: Math.abs(p.sy - start.sy) + 'px'}});
}});
window.addEventListener('mouseup', (e) => {{
  if (!start) return;
  const p = where(e), s = start;
  start = null;
  band().style.display = 'none';
  const r = (v) => Math.round(v * 10) / 10;
  if (Math.hypot(p.px - s.px, p.py - s.py) < {DRAG_PX}) {{
    trigger('select', {{kind: 'point', x: r(p.x), y: r(p.y)}});
  }} else {{
    trigger('select', {{kind: 'box', box: [r(Math.min(s.x, p.x)), r(Math.min(s.y, p.y)),
                                           r(Math.max(s.x, p.x)), r(Math.max(s.y, p.y))]}});
  }}
}});
"""


def data_url(image: Image.Image) -> str:
    """The picture as a JPEG data URL, scaled so its longer side is at most MAX_SIDE."""
    shown = image.convert("RGB")
    if max(shown.size) > MAX_SIDE:
        shown.thumbnail((MAX_SIDE, MAX_SIDE))
    buffer = io.BytesIO()
    shown.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def canvas_html(
    picture: Image.Image | None,
    *,
    size: tuple[int, int] | None = None,
    polygon: Sequence[Sequence[float]] = (),
    empty: str = "Pick an image from the strip below.",
    legend: str = "",
    selected: int | None = None,
) -> str:
    """The canvas markup: ``picture`` (already rendered with overlays) of an image of ``size``,
    with ``legend`` markup (the tracks on a video frame) under it. ``data-selected`` names the
    annotation drawn as selected, so a script (or a test) can tell the selection has been drawn."""
    if picture is None:
        return f"<div class='lw-empty'>{html.escape(empty)}</div>"
    width, height = size or picture.size
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in polygon)
    radius = max(width, height) / 250
    dots = "".join(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='{radius:.1f}'/>" for x, y in polygon)
    svg = (
        f"<svg viewBox='0 0 {width} {height}' preserveAspectRatio='none'>"
        f"<polygon points='{points}' fill='rgba(255,255,0,0.25)' stroke='yellow' "
        f"stroke-width='{max(width, height) / 400:.1f}'/><g fill='yellow'>{dots}</g></svg>"
        if polygon
        else ""
    )
    return (
        f"<div class='lw-canvas' data-w='{width}' data-h='{height}' data-selected='{selected or ''}'>"
        f"<img src='{data_url(picture)}' draggable='false' alt='image with annotations'/>"
        f"{svg}<div class='lw-band'></div></div>{legend}"
    )


def make_canvas() -> gr.HTML:
    return gr.HTML(canvas_html(None), css_template=CSS, js_on_load=JS, elem_id="lw-canvas")


def gesture(data: Any) -> dict[str, Any]:
    """Validate the canvas event payload; ValueError names what was expected."""
    if not isinstance(data, dict) or data.get("kind") not in ("point", "box"):
        raise ValueError(f"expected a canvas gesture {{'kind': 'point'|'box', ...}}, got {data!r}")
    if data["kind"] == "point":
        return {"kind": "point", "x": float(data["x"]), "y": float(data["y"])}
    box = [float(v) for v in data["box"]]
    if len(box) != 4:
        raise ValueError(f"a box gesture needs [x1, y1, x2, y2], got {box}")
    return {"kind": "box", "box": box}
