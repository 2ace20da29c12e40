"""YOLO-World v2 (s) built from ultralytics' yaml with random weights, prompts embedded by a random
open_clip text tower: the real architecture and predictor at imgsz 320, with the network blocked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.tools.no_network import blocked_network
from tools.backends.base import Detector
from tools.backends.yolo_world import YOLOWorldDetector
from tools.models.resolve import ModelMissing


@pytest.fixture(scope="module", autouse=True)
def _no_network() -> Iterator[None]:
    with blocked_network():
        yield


@pytest.fixture(scope="module")
def detector() -> YOLOWorldDetector:
    return YOLOWorldDetector(Path("unused"), "s", device="cpu", random_init=True, imgsz=320)


@pytest.fixture(scope="module")
def bus(photos: dict[str, Path]) -> np.ndarray:
    return np.asarray(Image.open(photos["bus.jpg"]).convert("RGB"))


class CountingEncoder:
    """Deterministic unit vectors per text, counting how often it is asked."""

    def __init__(self, width: int = 512) -> None:
        self.width = width
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]):  # type: ignore[no-untyped-def]
        import torch

        self.calls.append(list(texts))
        rows = [torch.randn(self.width, generator=torch.Generator().manual_seed(len(t))) for t in texts]
        return torch.stack(rows)


def test_meets_the_detector_protocol_without_going_online(detector: YOLOWorldDetector) -> None:
    import ultralytics.utils.checks
    import ultralytics.utils.events

    assert isinstance(detector, Detector)
    assert detector.model_id == "yolov8s-worldv2"
    # no update checks, asset downloads, pip installs or usage events
    assert ultralytics.utils.ONLINE is False and ultralytics.utils.checks.ONLINE is False
    assert ultralytics.utils.checks.AUTOINSTALL is False
    assert ultralytics.utils.events.events.enabled is False


def test_detections_are_boxes_in_the_image_labelled_by_prompts(
    detector: YOLOWorldDetector, bus: np.ndarray
) -> None:
    found = detector.detect(bus, ["pedestrian", "bus"], threshold=0.0)
    h, w = bus.shape[:2]
    assert 0 < len(found) <= detector.max_det
    assert found.xyxy.dtype == np.float32 and found.xyxy.shape == (len(found), 4)
    assert found.confidence.dtype == np.float32
    assert ((found.confidence >= 0) & (found.confidence <= 1)).all()
    assert set(found.label) <= {"pedestrian", "bus"}
    assert (found.xyxy[:, [0, 2]] >= 0).all() and (found.xyxy[:, [0, 2]] <= w).all()
    assert (found.xyxy[:, [1, 3]] >= 0).all() and (found.xyxy[:, [1, 3]] <= h).all()
    assert (found.xyxy[:, 2] >= found.xyxy[:, 0]).all() and (found.xyxy[:, 3] >= found.xyxy[:, 1]).all()


def test_threshold_drops_weaker_boxes(detector: YOLOWorldDetector, bus: np.ndarray) -> None:
    everything = detector.detect(bus, ["pedestrian"], threshold=0.0)
    cut = float(np.quantile(everything.confidence, 0.9))
    strong = detector.detect(bus, ["pedestrian"], threshold=cut)
    assert len(strong) < len(everything)
    assert (strong.confidence >= cut).all()
    assert len(detector.detect(bus, ["pedestrian"], threshold=1.0)) == 0


def test_prompts_become_the_models_classes(detector: YOLOWorldDetector, bus: np.ndarray) -> None:
    import torch

    detector.detect(bus, ["red car", "dog", "person"], threshold=0.5)
    model = detector._yolo.model
    expected = torch.nn.functional.normalize(detector._encode(["red car", "dog", "person"]), dim=-1)
    assert torch.allclose(model.txt_feats[0], expected, atol=1e-5)
    assert model.names == ["red car", "dog", "person"] and model.model[-1].nc == 3
    assert detector.prompts == ["red car", "dog", "person"]


def test_an_injected_text_encoder_runs_once_per_prompt_set(bus: np.ndarray) -> None:
    encoder = CountingEncoder()
    detector = YOLOWorldDetector(
        Path("unused"), device="cpu", random_init=True, imgsz=320, text_encoder=encoder
    )
    detector.detect(bus, ["cat", "dog"], threshold=0.0)
    detector.detect(bus, ["cat", "dog"], threshold=0.0)
    found = detector.detect(bus, ["tram"], threshold=0.0)
    assert encoder.calls == [["cat", "dog"], ["tram"]]
    assert set(found.label) == {"tram"}
    np.testing.assert_allclose(detector._yolo.model.txt_feats.norm(dim=-1).numpy(), 1.0, atol=1e-5)


def test_a_text_encoder_of_the_wrong_width_is_refused(bus: np.ndarray) -> None:
    detector = YOLOWorldDetector(
        Path("unused"), device="cpu", random_init=True, imgsz=320, text_encoder=CountingEncoder(width=768)
    )
    with pytest.raises(ValueError, match=r"\(1, 512\) embeddings, got \(1, 768\)"):
        detector.detect(bus, ["cat"], threshold=0.1)


@pytest.mark.parametrize(
    ("prompts", "threshold", "message"),
    [
        ([], 0.1, "non-empty list"),
        (["cat", " "], 0.1, "non-empty strings"),
        (["cat", "cat"], 0.1, "distinct"),
        (["cat"], 1.5, r"\[0, 1\], got 1.5"),
    ],
)
def test_bad_prompts_and_thresholds_are_refused(
    detector: YOLOWorldDetector, bus: np.ndarray, prompts: list[str], threshold: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        detector.detect(bus, prompts, threshold)


def test_images_that_are_not_rgb_uint8_are_refused(detector: YOLOWorldDetector) -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        detector.detect(np.zeros((32, 32, 3), np.float32), ["cat"], 0.1)


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"size": "z"}, "got 'z'"), ({"imgsz": 100}, "multiple of 32, got 100")]
)
def test_bad_settings_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        YOLOWorldDetector(Path("unused"), random_init=True, **kwargs)  # type: ignore[arg-type]


def test_missing_weights_name_the_file_and_the_import_command(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing) as raised:
        YOLOWorldDetector(tmp_path, "m")
    assert str(tmp_path / "full" / "yolov8m-worldv2.pt") in str(raised.value)
    assert "labelwright models import DIR" in str(raised.value)


def test_missing_text_encoder_weights_are_named_too(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "yolov8s-worldv2.pt").write_bytes(b"stand-in; never read")
    with pytest.raises(ModelMissing, match="open_clip_ViT-B-32.safetensors"):
        YOLOWorldDetector(tmp_path)


@pytest.mark.slow
def test_loads_a_checkpoint_from_the_models_dir(
    detector: YOLOWorldDetector, bus: np.ndarray, tmp_path: Path
) -> None:
    (tmp_path / "full").mkdir()
    detector._yolo.save(tmp_path / "full" / "yolov8s-worldv2.pt")  # what ultralytics ships: fp16
    loaded = YOLOWorldDetector(tmp_path, device="cpu", imgsz=320, text_encoder=detector._encode)
    saved = {
        k: v.half().float() for k, v in detector._yolo.model.state_dict().items() if v.is_floating_point()
    }
    state = loaded._yolo.model.state_dict()
    for name, tensor in saved.items():
        assert np.allclose(state[name].float().numpy(), tensor.numpy(), atol=1e-3), name
    assert len(loaded.detect(bus, ["pedestrian"], threshold=0.0)) > 0
