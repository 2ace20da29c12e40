"""Corner tracing, simplification and pycocotools rasterisation of polygons."""

from __future__ import annotations

import numpy as np
import pytest

from store.polygons import (
    check_polygons,
    join_rings,
    mask_from_polygons,
    polygon_area,
    simplify,
    to_coco,
    trace_outline,
)
from tests.store.shapes import HEIGHT, SHAPES, WIDTH


def test_rectangle_traces_its_pixel_corners() -> None:
    mask = np.zeros((10, 10), bool)
    mask[2:5, 3:8] = True  # rows 2..4, cols 3..7
    outline = trace_outline(mask)
    assert outline.holes == []
    (part,) = outline.parts
    assert {tuple(p) for p in part} == {(3, 2), (8, 2), (8, 5), (3, 5)}


@pytest.mark.parametrize("name", [n for n in SHAPES if n not in ("holes", "horse")])  # no holes
def test_exact_outline_rasterises_back_to_the_mask(name: str) -> None:
    mask = SHAPES[name]()
    polygons = to_coco(trace_outline(mask).parts)
    assert np.array_equal(mask_from_polygons(polygons, HEIGHT, WIDTH), mask)


def test_one_pixel_line_is_not_shrunk() -> None:
    # Centre tracing would give a zero-area polygon for a 1 px line; corner tracing keeps its area.
    mask = SHAPES["line1_h"]()
    (polygon,) = to_coco(trace_outline(mask).parts)
    assert polygon_area(polygon) == mask.sum()


def test_holes_are_counted() -> None:
    assert len(trace_outline(SHAPES["holes"]()).holes) == 2
    assert len(trace_outline(SHAPES["horse"]()).holes) == 1  # a 6 px gap between the legs
    assert trace_outline(SHAPES["parts"]()).holes == []


def test_simplify_drops_vertices_and_degenerate_parts() -> None:
    parts = trace_outline(SHAPES["blob"]()).parts
    simple = simplify(parts, 1.0)
    assert len(simple[0]) < len(parts[0]) / 2
    assert simplify(parts, 0.0) is parts
    with pytest.raises(ValueError, match="tolerance"):
        simplify(parts, -0.5)


def test_to_coco_shifts_by_the_crop_origin() -> None:
    part = np.array([[0, 0], [1, 0], [1, 1]])
    assert to_coco([part], dx=10, dy=20) == [[10.0, 20.0, 11.0, 20.0, 11.0, 21.0]]


@pytest.mark.parametrize(
    ("polygons", "match"),
    [
        ([], "non-empty"),
        ([[1, 2, 3, 4]], ">= 6"),
        ([[1, 2, 3, 4, 5, 6, 7]], ">= 6"),
        ([[1, 2, 3, 4, 5, float("nan")]], "finite"),
        ([[1, 2, 3, 4, 5, "6"]], "finite"),
        ([{"counts": ""}], "flat list"),
    ],
)
def test_bad_polygons_raise(polygons: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        check_polygons(polygons)


@pytest.mark.parametrize("name", ["holes", "horse", "parts", "line1_d"])
def test_joined_rings_keep_parts_and_holes_under_even_odd_fill(name: str) -> None:
    mask = SHAPES[name]()
    outline = trace_outline(mask)
    joined = join_rings(outline.parts + outline.holes)
    assert joined.shape == (
        sum(len(r) for r in outline.parts + outline.holes)
        + 2 * (len(outline.parts) + len(outline.holes) - 1),
        2,
    )
    assert np.array_equal(mask_from_polygons(to_coco([joined]), HEIGHT, WIDTH), mask)


def test_join_rings_needs_a_ring() -> None:
    with pytest.raises(ValueError, match="at least one"):
        join_rings([])
