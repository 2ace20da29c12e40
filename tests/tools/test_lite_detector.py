"""LiteDetector: COCO-80 CenterNet/NanoDet behind the Detector Protocol, prompts through the vocabulary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tools.backends.base import Detector
from tools.backends.lite_detector import LiteDetector, decode_centernet, decode_nanodet, nms_grouped
from tools.backends.vocab import COCO80, UnknownLabel

# Drawn by hand on ultralytics' bus.jpg (810x1080).
BUS = [15, 230, 805, 735]
PEOPLE = [[50, 398, 245, 905], [222, 405, 345, 860], [668, 390, 810, 880]]


def _rgb(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def _iou(a: np.ndarray | list[float], b: np.ndarray | list[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union


def test_decode_centernet_scales_input_pixels_to_unit_boxes() -> None:
    rows = np.array([[128, 256, 384, 512, 0.9, 5.0], [0, 0, 600, 10, 0.2, 0.0]], np.float32)
    xyxy, scores, classes = decode_centernet(rows, size=512)
    np.testing.assert_allclose(xyxy, [[0.25, 0.5, 0.75, 1.0], [0, 0, 1, 10 / 512]])
    assert scores.tolist() == pytest.approx([0.9, 0.2]) and classes.tolist() == [5, 0]


def _nanodet_outputs(size: int = 416) -> list[np.ndarray]:
    """Synthetic NanoDet outputs: one confident 'bus' at stride 32, cell (row 3, col 4)."""
    outputs = []
    for stride in (8, 16, 32):
        cells = (size // stride) ** 2
        scores = np.zeros((1, cells, 80), np.float32)
        bins = np.full((1, cells, 44), -20.0, np.float32)
        bins[..., ::11] = 20.0  # every side at distance 0 ...
        if stride == 32:
            scores[0, 3 * 13 + 4, 5] = 0.9
            bins[0, 3 * 13 + 4] = -20.0
            for side, distance in enumerate((1, 2, 3, 4)):  # ... except this cell's: 1, 2, 3, 4 strides
                bins[0, 3 * 13 + 4, side * 11 + distance] = 20.0
        outputs += [scores, bins]
    return outputs[::-1]  # the model's output order is not the stride order


def test_decode_nanodet_reads_distance_bins_from_the_cell_centre() -> None:
    xyxy, scores, classes = decode_nanodet(_nanodet_outputs(), size=416, threshold=0.5)
    cx, cy = (4 + 0.5) * 32, (3 + 0.5) * 32
    expected = np.array([cx - 32, cy - 64, cx + 96, cy + 128]) / 416
    np.testing.assert_allclose(xyxy, [expected], atol=1e-4)
    assert scores.tolist() == pytest.approx([0.9]) and classes.tolist() == [5]


def test_decode_nanodet_with_nothing_above_threshold_is_empty() -> None:
    xyxy, scores, classes = decode_nanodet(_nanodet_outputs(), threshold=0.95)
    assert xyxy.shape == (0, 4) and len(scores) == len(classes) == 0


def test_nms_is_per_group() -> None:
    xyxy = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    classes = np.array([0, 0, 1, 0])
    assert nms_grouped(xyxy, scores, classes, 0.5).tolist() == [0, 2, 3]


class _Scripted(LiteDetector):
    """A LiteDetector whose model returns fixed candidates (unit tests of the logic around it)."""

    def _run(self, image: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        xyxy = np.array([[0.1, 0.1, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0], [0.1, 0.1, 0.2, 0.2]], np.float32)
        scores = np.array([0.9, 0.6, 0.1], np.float32)
        classes = np.array([COCO80.index("person"), COCO80.index("bus"), COCO80.index("dog")])
        keep = scores >= threshold
        return xyxy[keep], scores[keep], classes[keep]


@pytest.fixture
def scripted(tmp_path: Path) -> LiteDetector:
    model = tmp_path / "nanodet.onnx"
    model.write_bytes(b"never loaded")
    return _Scripted(model)


def test_rows_carry_the_prompt_and_the_coco_name(scripted: LiteDetector) -> None:
    image = np.zeros((200, 400, 3), np.uint8)
    found = scripted.detect(image, ["pedestrians", "vehicle", "person"], 0.3)
    assert found.label == ["pedestrians", "vehicle"]  # first prompt naming a class wins
    assert found.data["class_name"] == ["person", "bus"]
    np.testing.assert_allclose(found.xyxy, [[40, 20, 200, 100], [200, 100, 400, 200]])
    assert scripted.model_id == "lite-nanodet" and isinstance(scripted, Detector)


def test_nms_runs_per_prompt_so_one_object_is_not_two_vehicles(tmp_path: Path) -> None:
    class BusAlsoTruck(LiteDetector):
        def _run(self, image: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            xyxy = np.array([[0.1, 0.1, 0.9, 0.9], [0.12, 0.1, 0.9, 0.92]], np.float32)
            return (
                xyxy,
                np.array([0.8, 0.4], np.float32),
                np.array([COCO80.index("bus"), COCO80.index("truck")]),
            )

    model = tmp_path / "nanodet.onnx"
    model.write_bytes(b"never loaded")
    image = np.zeros((10, 10, 3), np.uint8)
    assert BusAlsoTruck(model).detect(image, ["vehicle"], 0.3).data["class_name"] == ["bus"]
    assert BusAlsoTruck(model).detect(image, ["bus", "truck"], 0.3).data["class_name"] == ["bus", "truck"]


def test_classes_not_asked_for_are_dropped(scripted: LiteDetector) -> None:
    found = scripted.detect(np.zeros((10, 10, 3), np.uint8), ["bus"], 0.0)
    assert found.data["class_name"] == ["bus"]


@pytest.mark.parametrize("prompts", [["person", "unicorn"], ["lamp post"]])
def test_unknown_prompts_are_refused(scripted: LiteDetector, prompts: list[str]) -> None:
    with pytest.raises(UnknownLabel, match="cannot detect"):
        scripted.detect(np.zeros((10, 10, 3), np.uint8), prompts, 0.3)


@pytest.mark.parametrize(
    ("image", "threshold", "message"),
    [(np.zeros((10, 10), np.uint8), 0.3, "RGB uint8"), (np.zeros((10, 10, 3), np.uint8), 1.5, "threshold")],
)
def test_bad_inputs_are_refused(
    scripted: LiteDetector, image: np.ndarray, threshold: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        scripted.detect(image, ["person"], threshold)


def test_missing_model_and_unknown_arch_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="detector model"):
        LiteDetector(tmp_path / "centernet.onnx")
    other = tmp_path / "yolo.onnx"
    other.write_bytes(b"")
    with pytest.raises(ValueError, match="centernet"):
        LiteDetector(other)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["centernet", "nanodet"])
def test_finds_the_bus_and_the_people_in_bus_jpg(
    arch: str, models_dir: Path, photos: dict[str, Path]
) -> None:
    model = models_dir / "lite" / f"{arch}.onnx"
    if not model.is_file():
        pytest.skip(f"{model} missing: run `labelwright models fetch {arch}`")
    detector = LiteDetector(model, threads=2)
    found = detector.detect(_rgb(photos["bus.jpg"]), ["pedestrian", "bus"], 0.3)
    buses = found.xyxy[np.array(found.data["class_name"]) == "bus"]
    people = found.xyxy[np.array(found.label) == "pedestrian"]
    assert len(buses) == 1 and _iou(buses[0], BUS) > 0.8
    for person in PEOPLE:
        assert max(_iou(p, person) for p in people) > 0.7
    assert (found.confidence >= 0.3).all() and (np.diff(found.confidence) <= 0).all()
    assert detector.detect(_rgb(photos["bus.jpg"]), ["giraffe"], 0.3).xyxy.shape == (0, 4)
