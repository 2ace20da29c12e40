"""Missing objects and spilled labels from a fake detector's boxes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tools.audit.findings import AuditAnnotation
from tools.audit.missing import LOOSE, MISSING, SPILL, MissingThresholds, check_missing, compare, detect_known
from tools.backends.base import Detections
from tools.backends.vocab import to_coco

T = MissingThresholds()


def ann(i: int, category: str, bbox: list[float], mask: Any = None) -> AuditAnnotation:
    return AuditAnnotation(
        id=i, image_id=1, image_name="a.jpg", image_size=(640, 480), category=category, bbox=bbox, mask=mask
    )


def kinds(found: list[Any]) -> list[tuple[str, Any]]:
    return [(f.kind, f.annotation_id if f.annotation_id is not None else f.bbox) for f in found]


@pytest.mark.parametrize(
    ("anns", "detection", "expected"),
    [
        ([], ("person", [10, 10, 50, 100], 0.8), [(MISSING, [10, 10, 50, 100])]),
        ([], ("person", [10, 10, 50, 100], 0.4), []),  # too unsure
        ([ann(1, "person", [12, 12, 50, 100])], ("person", [10, 10, 50, 100], 0.8), []),
        (
            [ann(1, "person", [0, 0, 200, 300])],
            ("person", [10, 10, 30, 40], 0.8),
            [(LOOSE, 1)],
        ),  # not missing: loose
        (
            [ann(1, "car", [300, 10, 50, 100])],
            ("person", [10, 10, 50, 100], 0.8),
            [(MISSING, [10, 10, 50, 100])],
        ),
        (
            [ann(1, "cat", [11, 10, 50, 100])],
            ("person", [10, 10, 50, 100], 0.8),
            [],
        ),  # same object, other class
    ],
    ids=[
        "unlabelled",
        "unsure",
        "labelled",
        "inside-big-label-is-loose",
        "other-class-elsewhere",
        "other-class-same-box",
    ],
)
def test_missing(anns: list[AuditAnnotation], detection: tuple, expected: list) -> None:
    assert kinds(compare(anns, [detection], image_id=1, image_name="a.jpg", t=T)) == expected


def test_a_label_far_larger_than_its_detected_object_spills() -> None:
    spilled = ann(1, "person", [0, 0, 300, 300], mask={"size": [480, 640], "counts": "x"})
    loose = ann(2, "person", [350, 0, 200, 300])
    snug = ann(3, "person", [100, 350, 60, 100])
    detections = [
        ("person", [10, 10, 100, 200], 0.8),  # 22% of #1's box
        ("person", [360, 10, 80, 180], 0.9),  # 24% of #2's box
        ("person", [102, 352, 55, 95], 0.9),  # fills #3
        ("car", [5, 5, 50, 50], 0.9),  # inside #1 but not its class
    ]
    found = compare([spilled, loose, snug], detections, image_id=1, image_name="a.jpg", t=T)
    assert sorted(kinds([f for f in found if f.kind != MISSING])) == [(LOOSE, 2), (SPILL, 1)]
    spill = next(f for f in found if f.kind == SPILL)
    assert spill.evidence["detected_box"] == [10, 10, 100, 200] and spill.evidence["fill"] == pytest.approx(
        0.222, abs=1e-3
    )


class BoxDetector:
    """COCO-only like the lite detector: unknown labels raise UnknownLabel before any work."""

    model_id = "boxes"

    def __init__(self, rows: list[tuple[str, list[float], float]]) -> None:
        self.rows = rows
        self.prompts: list[list[str]] = []

    def detect(self, image: np.ndarray, prompts: list[str], threshold: float) -> Detections:
        for p in prompts:
            to_coco(p)
        self.prompts.append(list(prompts))
        rows = [r for r in self.rows if r[0] in prompts and r[2] >= threshold]
        if not rows:
            return Detections.empty()
        return Detections(
            xyxy=np.array([r[1] for r in rows]),
            confidence=np.array([r[2] for r in rows]),
            label=[r[0] for r in rows],
        )


def test_unknown_classes_are_dropped_once_and_the_rest_checked() -> None:
    detector = BoxDetector([("person", [10, 10, 60, 110], 0.9), ("cat", [200, 200, 300, 300], 0.3)])
    image = np.zeros((480, 640, 3), np.uint8)
    found = check_missing(
        [],
        images={1: "a.jpg", 2: "b.jpg"},
        load_image=lambda _: image,
        detector=detector,
        classes=["person", "zebra-crossing", "cat"],
    )
    assert kinds(found) == [(MISSING, [10, 10, 50, 100]), (MISSING, [10, 10, 50, 100])]
    assert [f.image_name for f in found] == ["a.jpg", "b.jpg"]
    assert detector.prompts == [["person", "cat"], ["person", "cat"]]


def test_a_detector_refusing_everything_yields_nothing() -> None:
    detections, usable = detect_known(BoxDetector([]), np.zeros((8, 8, 3), np.uint8), ["zebra-crossing"], 0.5)
    assert (detections, usable) == ([], [])
