"""A click on the lite stack means the detected object under it (tools.click_object)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tools.backends.base import Detections
from tools.catalog import vision_tools
from tools.click_object import object_box_at, wants_object_boxes

SEGMENT = vision_tools().get("segment")


class BoxesDetector:
    """Answers every prompt with the same fixed boxes (unit tests of the choice)."""

    model_id = "boxes"

    def __init__(self, boxes: list[list[float]]) -> None:
        self.boxes, self.calls = boxes, 0

    def detect(self, image: np.ndarray, prompts: list[str], threshold: float) -> Detections:
        self.calls += 1
        return Detections(
            xyxy=np.array(self.boxes), confidence=np.ones(len(self.boxes)), label=["x"] * len(self.boxes)
        )


IMAGE = np.zeros((100, 100, 3), np.uint8)


def at(
    detector: BoxesDetector | None, points: list[list[int]], labels: list[int], key: str | None = None
) -> object:
    return object_box_at(detector, IMAGE, np.array(points), np.array(labels), key=key)


def test_the_smallest_box_holding_the_positive_points_and_no_negative_one() -> None:
    detector = BoxesDetector([[0, 0, 100, 100], [10, 10, 50, 50], [20, 20, 30, 30]])
    assert at(detector, [[25, 25]], [1], key="a") == [20, 20, 30, 30]
    assert at(detector, [[40, 40]], [1], key="a") == [10, 10, 50, 50]
    # a negative point inside the smaller of two overlapping boxes rules it out
    overlapping = BoxesDetector([[0, 0, 50, 50], [30, 30, 100, 100]])
    assert at(overlapping, [[40, 40]], [1]) == [0, 0, 50, 50]
    assert at(overlapping, [[40, 40], [10, 10]], [1, 0]) == [30, 30, 100, 100]
    # two positive points need a box holding both
    assert at(detector, [[15, 15], [90, 90]], [1, 1]) == [0, 0, 100, 100]
    assert at(BoxesDetector([[10, 10, 20, 20]]), [[80, 80]], [1]) is None
    assert at(None, [[80, 80]], [1]) is None
    assert detector.calls == 2  # the two clicks with key "a" shared one detection pass


def test_only_segmenters_without_native_points_ask_the_detector(models_dir: Path) -> None:
    from tests.tools.conftest import FakeSegmenter
    from tools.backends.stacks import build_backends

    assert not wants_object_boxes(FakeSegmenter())  # no attribute: native (SAM 2's way)
    assert wants_object_boxes(build_backends("lite", models_dir).segmenter)


@pytest.mark.parametrize("point", [[405, 486], [405, 600]])  # the bus's side and its windows
def test_a_click_on_the_bus_in_the_lite_stack_masks_the_bus(store, models_dir: Path, point) -> None:
    """The browser test's click: at bus.jpg's centre the lite stack used to find no object."""
    from tools.backends.stacks import build_backends

    backends = build_backends("lite", models_dir)
    result = SEGMENT(store.ctx(backends), {"image": "bus.jpg", "label": "bus", "points": [point]})
    x1, y1, x2, y2 = result.box
    assert x2 - x1 > 600 and y2 - y1 > 350, f"expected the whole bus (about 770x540 px), got {result.box}"
    assert result.area > 0.5 * (x2 - x1) * (y2 - y1)
