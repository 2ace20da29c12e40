"""How the Review stream draws one proposal: the photo, its mask as a layer whose opacity is a CSS
variable (the slider sets it with no round trip), its box as SVG, and the page script for keys,
zoom (wheel, + - 0, z to the box) and pan (drag), all a CSS transform reset for every new item."""

from __future__ import annotations

import html
import io
from base64 import b64encode

import numpy as np
from PIL import Image as PILImage

from ui.canvas import MAX_SIDE, data_url
from ui.render import Overlay, color_of

CSS = """
.lw-frame { position: relative; overflow: hidden; line-height: 0; cursor: grab; user-select: none; }
.lw-stage { position: relative; display: inline-block; transform-origin: 0 0; }
.lw-stage .lw-photo { display: block; max-width: 100%; max-height: 78vh; }
.lw-stage .lw-mask, .lw-stage svg { position: absolute; inset: 0; width: 100%; height: 100%;
  pointer-events: none; }
.lw-stage .lw-mask { opacity: var(--lw-opacity, 0.5); }
.lw-empty { padding: 4em 1em; text-align: center; color: #888; border: 1px dashed #aaa; line-height: 1.4; }
"""

# Keys click the tab's buttons (or, for 1-9, send a select event), only while the stream is on
# screen and nobody is typing; zoom and pan are a CSS transform, reset for every new item.
JS = """
const frame = () => element.querySelector('.lw-frame');
const stage = () => element.querySelector('.lw-stage');
let z = {s: 1, x: 0, y: 0}, drag = null;
const apply = () => {  // the zoomed photo always covers the frame: no pan past its edges
  const st = stage();
  if (!st) return;
  z.x = Math.min(0, Math.max(st.offsetWidth * (1 - z.s), z.x));
  z.y = Math.min(0, Math.max(st.offsetHeight * (1 - z.s), z.y));
  st.style.transform = `translate(${z.x}px, ${z.y}px) scale(${z.s})`;
};
const zoomAt = (f, cx, cy) => {
  const s = Math.min(12, Math.max(1, z.s * f)), k = s / z.s;
  z = s === 1 ? {s: 1, x: 0, y: 0} : {s, x: cx - (cx - z.x) * k, y: cy - (cy - z.y) * k};
  apply();
};
const centre = () => { const st = stage(); return st ? [st.offsetWidth / 2, st.offsetHeight / 2] : [0, 0]; };
const toBox = () => {
  const f = frame(), st = stage();
  if (!f || !st || !f.dataset.box) return;
  const [x, y, w, h] = f.dataset.box.split(',').map(Number), k = st.offsetWidth / +f.dataset.w;
  const s = Math.min(12, Math.max(1, 0.7 * Math.min(st.offsetWidth / (w * k), st.offsetHeight / (h * k))));
  z = {s, x: st.offsetWidth / 2 - s * (x + w / 2) * k, y: st.offsetHeight / 2 - s * (y + h / 2) * k};
  apply();
};
watch('value', () => { z = {s: 1, x: 0, y: 0}; apply(); });
element.addEventListener('wheel', (e) => {
  if (!e.target.closest('.lw-frame')) return;
  e.preventDefault();
  const r = frame().getBoundingClientRect();
  zoomAt(e.deltaY < 0 ? 1.25 : 0.8, e.clientX - r.left, e.clientY - r.top);
}, {passive: false});
element.addEventListener('mousedown', (e) => {
  if (e.target.closest('.lw-frame') && e.button === 0) { e.preventDefault(); drag = [e.clientX, e.clientY]; }
});
window.addEventListener('mousemove', (e) => {
  if (!drag) return;
  z.x += e.clientX - drag[0]; z.y += e.clientY - drag[1]; drag = [e.clientX, e.clientY]; apply();
});
window.addEventListener('mouseup', () => { drag = null; });
const BUTTONS = {a: 'accept', r: 'reject', n: 'next', ArrowRight: 'next', b: 'back', ArrowLeft: 'back',
                 e: 'edit'};
if (window.lwStreamKeys) document.removeEventListener('keydown', window.lwStreamKeys);
window.lwStreamKeys = (e) => {
  if (!element.isConnected || element.offsetParent === null) return;
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.target.closest && e.target.closest('input, textarea, select, [contenteditable=true]')) return;
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  if (BUTTONS[key]) document.querySelector('#lw-stream-' + BUTTONS[key]).click();
  else if (/^[1-9]$/.test(key)) trigger('select', {relabel: +key});
  else if (key === '+' || key === '=') zoomAt(1.25, ...centre());
  else if (key === '-') zoomAt(0.8, ...centre());
  else if (key === '0') { z = {s: 1, x: 0, y: 0}; apply(); }
  else if (key === 'z') toBox();
  else return;
  e.preventDefault();
};
document.addEventListener('keydown', window.lwStreamKeys);
"""

OPACITY_JS = "(v) => { document.querySelector('#lw-stream-view').style.setProperty('--lw-opacity', v); }"
KEYS = (
    "**a** accept · **r** reject · **1-9** relabel · **e** edit · **n**/→ next · **b**/← back · "
    "**+ - 0 z** zoom, wheel and drag"
)


def mask_url(mask: np.ndarray, color: tuple[int, int, int], size: tuple[int, int]) -> str:
    """The mask as a transparent PNG of the class colour, at the size the photo is shown."""
    rgba = np.zeros((*mask.shape, 4), np.uint8)
    rgba[mask] = (*color, 255)
    picture = PILImage.fromarray(rgba, "RGBA").resize(size, PILImage.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + b64encode(buffer.getvalue()).decode()


def empty_html(text: str) -> str:
    return f"<div class='lw-empty'>{html.escape(text)}</div>"


def frame_html(found: Overlay, size: tuple[int, int], photo: PILImage.Image) -> str:
    """The proposal ``found`` on ``photo`` (an image of ``size`` original pixels), ready to zoom."""
    from store.masks import mask_from_rle

    width, height = size
    photo = photo.copy()
    photo.thumbnail((MAX_SIDE, MAX_SIDE))
    color = color_of(found)
    layer = ""
    if found.mask is not None:
        layer = f"<img class='lw-mask' src='{mask_url(mask_from_rle(found.mask), color, photo.size)}'/>"
    x, y, w, h = found.bbox
    svg = (
        f"<svg viewBox='0 0 {width} {height}' preserveAspectRatio='none'><rect x='{x:.1f}' "
        f"y='{y:.1f}' width='{w:.1f}' height='{h:.1f}' fill='none' stroke='rgb{color}' "
        "stroke-width='3' vector-effect='non-scaling-stroke'/></svg>"
    )
    return (
        f"<div class='lw-frame' data-item='{found.id}' data-w='{width}' data-h='{height}' "
        f"data-box='{x:.1f},{y:.1f},{w:.1f},{h:.1f}'><div class='lw-stage'>"
        f"<img class='lw-photo' src='{data_url(photo)}' draggable='false' alt='proposal'/>{layer}{svg}"
        "</div></div>"
    )
