"""The followers' mask clean-up and stack choice (the propagation itself: tests/ops/test_tracks.py
on the lite stack, tests/tools/test_sam2_video.py on SAM 2.1)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from store.masks import mask_from_rle
from tests.tools.conftest import FakeDetector, FakeSegmenter
from tools.video_propagate import model_name, storable, video_tracker


def test_a_noisy_mask_keeps_its_largest_part_solid() -> None:
    rng = np.random.default_rng(0)
    mask = rng.random((240, 320)) > 0.5  # salt and pepper: over the run-length limit as it is
    mask[50:150, 60:200] = True
    mask[90:100, 100:120] = False  # a hole
    rle = storable(mask)
    assert rle is not None
    solid = mask_from_rle(rle).astype(bool)
    assert solid[50:150, 60:200].all() and solid.sum() >= 100 * 140
    assert storable(np.zeros((24, 32), dtype=bool)) is None


@dataclass
class Lite:
    detector: FakeDetector
    segmenter: FakeSegmenter


def test_the_lite_stack_follows_with_its_detector() -> None:
    backends = Lite(FakeDetector(), FakeSegmenter())
    assert video_tracker(backends) is None
    assert model_name(backends) == "fake-detector+iou-follow+fake-segmenter"


def test_a_fast_walker_is_matched_by_its_centre_not_by_overlap() -> None:
    from tools.video_propagate import _nearest, _shift

    before, now = np.array([578, 239, 604, 324], np.float32), np.array([552, 239, 581, 322], np.float32)
    predicted = now + _shift(before, now)  # the next frame, at the same speed
    walker, other = np.array([530, 238, 563, 322], np.float32), np.array([443, 172, 479, 250], np.float32)
    assert _nearest(predicted, [other, walker], 0.75) == 1
    assert _nearest(predicted, [other], 0.75) is None
    assert _nearest(predicted, [np.array([528, 238, 700, 322], np.float32)], 0.75) is None  # 5x its size
