"""mask_geometry: faithful polygons where they can be, RLE where they cannot, on the crop only."""

from __future__ import annotations

import time

import numpy as np
import pytest

from store.geometry import mask_geometry, single_polygon
from store.masks import mask_from_rle, rle_from_mask
from store.polygons import mask_from_polygons
from tests.store.shapes import HEIGHT, SHAPES, WIDTH, holes, line, parts, person


def _rasterised(segmentation: list | dict) -> np.ndarray:
    if isinstance(segmentation, dict):
        return mask_from_rle(segmentation)
    return mask_from_polygons(segmentation, HEIGHT, WIDTH)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / float((a | b).sum())


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_fidelity_is_the_iou_at_image_size(name: str) -> None:
    mask = SHAPES[name]()
    geom = mask_geometry(rle_from_mask(mask))
    assert geom.area == mask.sum()
    ys, xs = np.nonzero(mask)
    assert geom.bbox == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
    # Computed on the crop, fidelity must equal the IoU of the full-size re-rasterisation.
    assert geom.fidelity == pytest.approx(_iou(_rasterised(geom.segmentation), mask), abs=1e-12)
    assert geom.fidelity >= 0.98


@pytest.mark.parametrize("thickness", [1, 2, 3, 5])
@pytest.mark.parametrize("direction", ["h", "v", "d"])
def test_thin_lines_keep_every_pixel_as_polygons(thickness: int, direction: str) -> None:
    mask = line(thickness, direction)
    geom = mask_geometry(rle_from_mask(mask))
    assert not geom.is_rle
    assert len(geom.segmentation) == 1  # a diagonal line is one 8-connected part
    assert _rasterised(geom.segmentation).sum() == pytest.approx(mask.sum(), rel=0.02)


def test_single_pixel_is_its_unit_square() -> None:
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[7, 11] = True
    geom = mask_geometry(rle_from_mask(mask))
    assert geom.segmentation == [[11.0, 7.0, 11.0, 8.0, 12.0, 8.0, 12.0, 7.0]]
    assert geom.fidelity == 1.0


def test_pixels_touching_at_a_corner_are_one_part() -> None:
    mask = np.zeros((10, 10), bool)
    mask[2, 2] = mask[3, 3] = True
    geom = mask_geometry(rle_from_mask(mask))
    assert len(geom.segmentation) == 1
    assert geom.fidelity == 1.0


def test_holes_stay_rle() -> None:
    mask = holes()
    geom = mask_geometry(rle_from_mask(mask))
    assert geom.is_rle and geom.fidelity == 1.0
    assert np.array_equal(mask_from_rle(geom.segmentation), mask)


def test_one_polygon_per_part() -> None:
    geom = mask_geometry(rle_from_mask(parts()))
    assert len(geom.segmentation) == 3


def test_tolerance_trades_vertices_for_fidelity() -> None:
    rle = rle_from_mask(person())
    exact = mask_geometry(rle, tolerance=0.0)
    coarse = mask_geometry(rle, tolerance=1.0)
    assert exact.fidelity == 1.0
    assert sum(map(len, coarse.segmentation)) < sum(map(len, exact.segmentation)) / 3
    assert 0.98 <= coarse.fidelity < 1.0


def test_strict_fidelity_takes_the_exact_outline() -> None:
    # The simplified outline misses 1.0, the unsimplified corner outline reaches it.
    geom = mask_geometry(rle_from_mask(person()), min_fidelity=1.0)
    assert not geom.is_rle and geom.fidelity == 1.0


def test_accepts_uncompressed_rle() -> None:
    mask = parts()
    flat = mask.ravel(order="F").astype(np.int8)
    change = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    counts = np.diff(np.concatenate([[0], change])).tolist()
    geom = mask_geometry({"size": [HEIGHT, WIDTH], "counts": counts})
    assert geom.area == mask.sum()


@pytest.mark.parametrize(
    ("rle", "match"),
    [
        (rle_from_mask(np.zeros((4, 4), bool)), "empty"),
        ({"size": [4], "counts": ""}, "size"),
        ({"size": [4, 4], "counts": [3, 4]}, "sum"),
        ({"size": [4, 4], "counts": 5}, "counts"),
    ],
)
def test_bad_masks_raise(rle: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        mask_geometry(rle)


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"tolerance": -1}, "tolerance"), ({"min_fidelity": 2}, "fidelity")]
)
def test_bad_arguments_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        mask_geometry(rle_from_mask(person()), **kwargs)


def test_typical_object_is_fast() -> None:
    rle = rle_from_mask(person())
    mask_geometry(rle)
    start = time.perf_counter()
    for _ in range(50):
        mask_geometry(rle)
    per_call_ms = (time.perf_counter() - start) / 50 * 1e3
    assert per_call_ms < 20, f"{per_call_ms:.1f} ms per call"


@pytest.mark.parametrize("name", ["holes", "parts", "person", "line1_d", "pixel"])
def test_single_polygon_carries_parts_and_holes(name: str) -> None:
    mask = SHAPES[name]()
    polygon, fidelity = single_polygon(rle_from_mask(mask))
    assert fidelity >= 0.98
    assert fidelity == pytest.approx(_iou(_rasterised([polygon]), mask), abs=1e-12)


@pytest.mark.parametrize(
    "region",
    [
        (slice(None), slice(None)),  # the whole image
        (slice(0, 1), slice(0, 1)),  # top-left pixel
        (slice(HEIGHT - 1, None), slice(WIDTH - 1, None)),  # bottom-right pixel
        (slice(None), slice(WIDTH - 3, None)),  # a strip along the right edge
    ],
)
def test_masks_touching_the_image_border(region: tuple[slice, slice]) -> None:
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[region] = True
    geom = mask_geometry(rle_from_mask(mask))
    assert not geom.is_rle and geom.fidelity == 1.0
    assert np.array_equal(_rasterised(geom.segmentation), mask)
