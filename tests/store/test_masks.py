"""RLE helpers: round trips, the accepted spellings, and the errors for the rest."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from store.masks import area_from_rle, bbox_from_rle, mask_from_rle, normalize_rle, rle_from_mask, rle_iou
from tests.store.shapes import SHAPES


@pytest.mark.parametrize("name", ["pixel", "parts", "holes", "horse"])
def test_round_trip_is_lossless(name: str) -> None:
    mask = SHAPES[name]()
    rle = rle_from_mask(mask)
    assert isinstance(rle["counts"], str)
    assert rle["size"] == list(mask.shape)
    assert np.array_equal(mask_from_rle(rle), mask)
    assert area_from_rle(rle) == mask.sum()


def test_bbox_is_tight_xywh() -> None:
    mask = np.zeros((20, 30), bool)
    mask[5:9, 10:17] = True
    assert bbox_from_rle(rle_from_mask(mask)) == [10.0, 5.0, 7.0, 4.0]


def test_bytes_and_uncompressed_counts_normalise_to_the_same_rle() -> None:
    mask = SHAPES["parts"]()
    rle = rle_from_mask(mask)
    as_bytes = {"size": rle["size"], "counts": rle["counts"].encode()}
    flat = mask.ravel(order="F").astype(np.int8)
    edges = np.flatnonzero(np.diff(flat)) + 1
    counts = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    if flat[0]:
        counts = [0, *counts]
    assert normalize_rle(as_bytes) == rle
    assert normalize_rle({"size": rle["size"], "counts": counts}) == rle
    # pycocotools reads what we write.
    assert np.array_equal(mask_utils.decode({"size": rle["size"], "counts": rle["counts"]}), mask)


def test_iou() -> None:
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[:, :4] = True
    b[:, 2:6] = True
    assert rle_iou(rle_from_mask(a), rle_from_mask(b)) == pytest.approx(20 / 60)
    assert rle_iou(rle_from_mask(b * False), rle_from_mask(b * False)) == 1.0
    with pytest.raises(ValueError, match="sizes differ"):
        rle_iou(rle_from_mask(a), rle_from_mask(a[:5]))


@pytest.mark.parametrize(
    ("rle", "match"),
    [
        ({"size": [0, 4], "counts": ""}, "positive"),
        ({"size": "4x4", "counts": ""}, "size"),
        ({"size": [2, 2], "counts": [1, -1, 4]}, "counts"),
        ({"size": [2, 2], "counts": None}, "counts"),
    ],
)
def test_malformed_rle_raises(rle: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        normalize_rle(rle)


def test_three_dimensional_mask_raises() -> None:
    with pytest.raises(ValueError, match="2-D"):
        rle_from_mask(np.zeros((2, 2, 2), bool))
