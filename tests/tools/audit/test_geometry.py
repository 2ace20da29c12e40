from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from tools.audit.findings import AuditAnnotation
from tools.audit.geometry import check_geometry, polygon_self_intersects

W, H = 200, 100


def rle(mask: np.ndarray) -> dict:
    r = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": r["size"], "counts": r["counts"].decode()}


def ann(bbox, mask=None, segmentation=None) -> AuditAnnotation:  # type: ignore[no-untyped-def]
    return AuditAnnotation(
        id=1,
        image_id=1,
        image_name="a.jpg",
        image_size=(W, H),
        category="car",
        bbox=bbox,
        mask=rle(mask) if mask is not None else None,
        segmentation=segmentation,
    )


def filled(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


def kinds(a: AuditAnnotation) -> set[str]:
    return {f.kind for f in check_geometry(a)}


def test_clean_annotation_has_no_findings() -> None:
    m = filled(20, 20, 60, 70)
    assert kinds(ann([20, 20, 40, 50], m, [[20, 20, 60, 20, 60, 70, 20, 70]])) == set()


@pytest.mark.parametrize(
    ("bbox", "expected"),
    [
        ([10, 10, 1, 30], "degenerate_box"),
        ([10, 10, 3, 3], "tiny_box"),
        ([10, 10, 190, 5], "extreme_aspect"),
        ([150, 50, 80, 30], "box_outside_image"),
    ],
)
def test_box_checks(bbox: list[float], expected: str) -> None:
    assert expected in kinds(ann(bbox))


def test_sparse_spilling_and_fragmented_masks() -> None:
    sparse = filled(20, 20, 25, 25)
    assert "sparse_mask" in kinds(ann([20, 20, 60, 60], sparse))
    spill = filled(20, 20, 100, 70)
    assert "mask_spills" in kinds(ann([20, 20, 40, 50], spill))
    frag = np.zeros((H, W), bool)
    for x in range(10, 190, 40):
        frag[20:40, x : x + 15] = True
    assert "fragmented_mask" in kinds(ann([10, 20, 175, 20], frag))


def test_self_intersecting_polygon() -> None:
    bowtie = [0, 0, 10, 10, 10, 0, 0, 10]
    square = [0, 0, 10, 0, 10, 10, 0, 10]
    assert polygon_self_intersects(bowtie)
    assert not polygon_self_intersects(square)
    m = filled(0, 0, 10, 10)
    assert "self_intersecting_polygon" in kinds(ann([0, 0, 10, 10], m, [bowtie]))


def test_fingerprint_is_stable_and_specific() -> None:
    a = check_geometry(ann([10, 10, 3, 3]))[0]
    b = check_geometry(ann([10, 10, 3, 3]))[0]
    assert a.fingerprint() == b.fingerprint()
    a.annotation_id = 2
    assert a.fingerprint() != b.fingerprint()
