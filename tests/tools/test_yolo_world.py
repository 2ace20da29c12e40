"""YOLO-World v2 (s) built from ultralytics' yaml with random weights, prompts embedded by a random
open_clip text tower: the real architecture and predictor at imgsz 320, with the network blocked."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.tools.no_network import blocked_network
from tools.backends.base import BatchDetector, Detections, Detector
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
def lively() -> YOLOWorldDetector:
    """Random weights whose answers depend on the image: as PyTorch initialises them the signal
    shrinks layer by layer and the score head starts at sigmoid(-10), so every image gets the same
    boxes and scores to 3e-5. Kaiming-normal convolutions, a neutral score head and sharper box
    logits make images differ by about 0.5 px and 0.02 in score."""
    found = YOLOWorldDetector(Path("unused"), "s", device="cpu", random_init=True, imgsz=320)
    from ultralytics.nn.modules.block import BNContrastiveHead  # after the detector turned it offline

    torch.manual_seed(0)
    for module in found._yolo.model.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight)
        if isinstance(module, BNContrastiveHead):
            module.bias.data.zero_()
            module.logit_scale.data.fill_(1.0)
    for branch in found._yolo.model.model[-1].cv2:  # box distributions, sharpened
        branch[-1].weight.data *= 10
    return found


def assert_same_outputs(got: torch.Tensor, expected: torch.Tensor) -> None:
    """Raw outputs ``(n, 4 + classes, anchors)``: boxes within 1e-3 px, scores within 1e-5."""
    assert got.shape == expected.shape
    torch.testing.assert_close(got[:, :4], expected[:, :4], atol=1e-3, rtol=0)
    torch.testing.assert_close(got[:, 4:], expected[:, 4:], atol=1e-5, rtol=0)


def assert_images_differ(outputs: torch.Tensor) -> None:
    """Far more than the tolerances above, so equal outputs mean the right image's answer."""
    assert (outputs[0, :4] - outputs[1, :4]).abs().max() > 0.1
    assert (outputs[0, 4:] - outputs[1, 4:]).abs().max() > 1e-3


@pytest.fixture(scope="module")
def bus(photos: dict[str, Path]) -> np.ndarray:
    return np.asarray(Image.open(photos["bus.jpg"]).convert("RGB"))


@pytest.fixture(scope="module")
def zidane(photos: dict[str, Path]) -> np.ndarray:
    return np.asarray(Image.open(photos["zidane.jpg"]).convert("RGB"))


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

    assert isinstance(detector, Detector) and isinstance(detector, BatchDetector)
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


def test_images_that_are_not_rgb_uint8_are_refused(detector: YOLOWorldDetector, bus: np.ndarray) -> None:
    with pytest.raises(ValueError, match="^image must be RGB uint8.*dtype float32"):
        detector.detect(np.zeros((32, 32, 3), np.float32), ["cat"], 0.1)
    with pytest.raises(ValueError, match=r"image 1 must be RGB uint8.*shape \(32, 32\)"):
        detector.detect_batch([bus, np.zeros((32, 32), np.uint8)], ["cat"], 0.1)


def raw_outputs(detector: YOLOWorldDetector, call: Callable[[], object]) -> torch.Tensor:
    """The model's outputs before NMS, one row per image, while ``call`` runs.

    Random weights score many boxes within 1e-7 of each other, so which of them NMS keeps, and in
    which order, can flip on float noise between a batch and a single image; the outputs cannot.
    """
    outputs: list[torch.Tensor] = []

    def keep(_module: object, _inputs: object, output: object) -> None:
        outputs.append((output[0] if isinstance(output, list | tuple) else output).detach().clone())

    hook = detector._yolo.predictor.model.register_forward_hook(keep)
    try:
        call()
    finally:
        hook.remove()
    return torch.cat(outputs)


def test_a_batch_of_one_shape_equals_detecting_one_by_one(lively: YOLOWorldDetector, bus: np.ndarray) -> None:
    prompts = ["pedestrian", "bus"]
    images = [bus, np.ascontiguousarray(bus[:, ::-1]), np.ascontiguousarray(bus[::-1])]
    lively.detect(bus, prompts, threshold=0.5)  # sets the prompts up: the predictor hooked below
    found: list[Detections] = []
    batched = raw_outputs(lively, lambda: found.extend(lively.detect_batch(images, prompts, threshold=0.0)))
    alone = torch.cat([raw_outputs(lively, lambda im=im: lively.detect(im, prompts, 0.0)) for im in images])
    assert batched.shape[0] == 3
    assert_same_outputs(batched, alone)
    assert_images_differ(batched)
    h, w = bus.shape[:2]
    assert len(found) == 3 and all(len(one) > 0 and set(one.label) <= set(prompts) for one in found)
    assert all((one.xyxy[:, [0, 2]] <= w).all() and (one.xyxy[:, [1, 3]] <= h).all() for one in found)


def test_a_batch_of_mixed_shapes_answers_in_input_order(
    lively: YOLOWorldDetector, bus: np.ndarray, zidane: np.ndarray
) -> None:
    """Mixed shapes are padded to imgsz square (not detect's minimal padding), so the check is
    that each answer belongs to its own image wherever it sits in the batch."""
    lively.detect(bus, ["person"], threshold=0.5)
    found: list[Detections] = []
    forward = raw_outputs(lively, lambda: found.extend(lively.detect_batch([bus, zidane], ["person"], 0.0)))
    backward = raw_outputs(lively, lambda: lively.detect_batch([zidane, bus], ["person"], 0.0))
    assert_same_outputs(forward, backward.flip(0))
    assert_images_differ(forward)
    for image, one in zip((bus, zidane), found, strict=True):
        h, w = image.shape[:2]
        assert len(one) > 0 and one.label == ["person"] * len(one)
        assert (one.xyxy[:, [0, 2]] <= w).all() and (one.xyxy[:, [1, 3]] <= h).all()
    assert (found[1].xyxy[:, 0] > bus.shape[1]).any()  # zidane is 1280 wide, the bus 810


def test_an_empty_batch_gives_no_results_but_checks_its_arguments(detector: YOLOWorldDetector) -> None:
    assert detector.detect_batch([], ["cat"], threshold=0.1) == []
    with pytest.raises(ValueError, match="distinct"):
        detector.detect_batch([], ["cat", "cat"], threshold=0.1)


def test_precision_is_fp32_on_cpu_and_half_reaches_ultralytics_as_quantize_16(
    detector: YOLOWorldDetector, bus: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert detector.precision == "fp32"
    detector.detect(bus, ["pedestrian"], threshold=0.5)
    assert detector._yolo.predictor.args.quantize is None
    monkeypatch.setattr(detector, "precision", "fp16")  # what a CUDA device resolves to
    detector.detect(bus, ["pedestrian"], threshold=0.5)
    # a new predictor with half precision; ultralytics itself keeps fp32 on CPU
    assert detector._yolo.predictor.args.quantize == 16 and detector._yolo.predictor.model.fp16 is False


@pytest.mark.parametrize(
    ("precision", "message"),
    [
        ("half", r"one of \['auto', 'fp32', 'fp16', 'bf16'\], got 'half'"),
        ("fp16", "needs a CUDA device, got device 'cpu'"),
        ("bf16", r"'bf16' is not supported here: expected one of \['auto', 'fp32', 'fp16'\]"),
    ],
)
def test_impossible_precisions_are_refused(precision: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        YOLOWorldDetector(Path("unused"), device="cpu", random_init=True, precision=precision)


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
