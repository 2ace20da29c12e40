"""Geometry checks: shapes no correct label has (degenerate, tiny, spilling, fragmented...).

Each check is a small function of one annotation with its own thresholds, so each is tested and
tuned on its own; ``check_geometry`` runs them all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tools.audit.findings import AuditAnnotation, Finding


@dataclass(frozen=True)
class GeometryThresholds:
    min_side_px: float = 2.0  # below this a box is degenerate
    # Boxes smaller than this many pixels (6x6)... 16 (4x4) let a planted 5x4 px "person" through:
    # no label that small is meant, while real distant people are ~8x20 px and up.
    tiny_area_px: float = 36.0
    tiny_area_frac: float = 5e-5  # ...or this fraction of the image are flagged tiny
    max_aspect: float = 12.0
    outside_tolerance_px: float = 1.0
    min_fill: float = 0.15  # mask area / box area
    max_spill: float = 0.05  # mask fraction outside its box
    max_parts: int = 3  # connected parts holding >= 2% of the mask each
    min_main_part: float = 0.6  # largest part's share of the mask


def _finding(
    ann: AuditAnnotation, kind: str, message: str, severity: float, confidence: float, **ev
) -> Finding:
    evidence = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in ev.items()}
    return Finding.about(ann, kind, message, severity, confidence, evidence)


def check_box(ann: AuditAnnotation, t: GeometryThresholds) -> list[Finding]:
    x, y, w, h = ann.bbox
    width, height = ann.image_size
    out: list[Finding] = []
    if min(w, h) < t.min_side_px:
        out.append(_finding(ann, "degenerate_box", f"box is {w:.1f}x{h:.1f} px", 0.9, 0.95, w=w, h=h))
        return out
    area = w * h
    if area < max(t.tiny_area_px, t.tiny_area_frac * width * height):
        out.append(
            _finding(ann, "tiny_box", f"box of {area:.0f} px² is tiny for this image", 0.6, 0.8, area=area)
        )
    aspect = max(w / h, h / w)
    if aspect > t.max_aspect:
        out.append(_finding(ann, "extreme_aspect", f"aspect ratio {aspect:.1f}:1", 0.4, 0.6, aspect=aspect))
    tol = t.outside_tolerance_px
    if x < -tol or y < -tol or x + w > width + tol or y + h > height + tol:
        out.append(
            _finding(
                ann,
                "box_outside_image",
                f"box leaves the {width}x{height} image",
                0.7,
                0.99,
                image=[width, height],
            )
        )
    return out


def check_mask(ann: AuditAnnotation, t: GeometryThresholds) -> list[Finding]:
    mask = ann.decoded_mask()
    if mask is None:
        return []
    area = int(mask.sum())
    if area == 0:
        return [_finding(ann, "empty_mask", "mask has no pixels", 0.9, 0.99)]
    x, y, w, h = ann.bbox
    out: list[Finding] = []
    fill = area / max(w * h, 1.0)
    if fill < t.min_fill:
        out.append(_finding(ann, "sparse_mask", f"mask fills {fill:.0%} of its box", 0.5, 0.7, fill=fill))
    x0, y0 = max(int(np.floor(x - 1)), 0), max(int(np.floor(y - 1)), 0)
    x1, y1 = int(np.ceil(x + w + 1)), int(np.ceil(y + h + 1))
    inside = int(mask[y0:y1, x0:x1].sum())
    spill = (area - inside) / area
    if spill > t.max_spill:
        out.append(
            _finding(
                ann, "mask_spills", f"{spill:.0%} of the mask lies outside its box", 0.6, 0.85, spill=spill
            )
        )
    import cv2

    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    tight = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]  # same parts, a fraction of the pixels
    n, labels, stats, _ = cv2.connectedComponentsWithStats(tight.astype(np.uint8), connectivity=8)
    sizes = np.sort(stats[1:, cv2.CC_STAT_AREA])[::-1]
    parts = int((sizes >= 0.02 * area).sum())
    main = float(sizes[0] / area) if len(sizes) else 1.0
    if parts > t.max_parts or main < t.min_main_part:
        out.append(
            _finding(
                ann,
                "fragmented_mask",
                f"mask in {n - 1} parts, largest {main:.0%}",
                0.4,
                0.6,
                parts=parts,
                main=main,
            )
        )
    return out


def _segments_cross(p1, p2, p3, p4) -> bool:  # type: ignore[no-untyped-def]
    def orient(a, b, c) -> float:  # type: ignore[no-untyped-def]
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    d1, d2 = orient(p3, p4, p1), orient(p3, p4, p2)
    d3, d4 = orient(p1, p2, p3), orient(p1, p2, p4)
    return d1 * d2 < 0 and d3 * d4 < 0


def polygon_self_intersects(flat: list[float]) -> bool:
    """Proper crossings between non-adjacent edges of a closed polygon ``[x0, y0, x1, y1, ...]``."""
    pts = list(zip(flat[0::2], flat[1::2], strict=True))
    n = len(pts)
    edges = [(pts[i], pts[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 2, n):
            if i == 0 and j == n - 1:
                continue  # these two share the closing vertex
            if _segments_cross(*edges[i], *edges[j]):
                return True
    return False


def check_polygons(ann: AuditAnnotation, t: GeometryThresholds) -> list[Finding]:
    if not isinstance(ann.segmentation, list):
        return []
    bad = [i for i, poly in enumerate(ann.segmentation) if len(poly) >= 8 and polygon_self_intersects(poly)]
    if not bad:
        return []
    return [
        _finding(
            ann, "self_intersecting_polygon", f"polygon part {bad[0]} crosses itself", 0.5, 0.9, parts=bad
        )
    ]


def check_geometry(ann: AuditAnnotation, t: GeometryThresholds | None = None) -> list[Finding]:
    t = t or GeometryThresholds()
    found = check_box(ann, t)
    if any(f.kind == "degenerate_box" for f in found):
        return found
    return found + check_mask(ann, t) + check_polygons(ann, t)
