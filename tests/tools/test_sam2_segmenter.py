"""SAM 2.1 tiny with random weights: the real architecture and predictor, no download.

Embedding one image costs ~6 s on two CPU cores (the encoder always sees 1024x1024), so the tests
that need an embedding share one per module and are marked slow.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.tools.no_network import blocked_network
from tools.backends.base import BatchSegmenter, Segmenter
from tools.backends.sam2_segmenter import SAM2Segmenter
from tools.models.resolve import ModelMissing

H, W = 240, 320


@pytest.fixture(scope="module", autouse=True)
def _no_network() -> Iterator[None]:
    with blocked_network():
        yield


@pytest.fixture(scope="module")
def segmenter() -> SAM2Segmenter:
    return SAM2Segmenter(Path("unused"), "tiny", device="cpu", random_init=True)


@pytest.fixture(scope="module")
def bus(photos: dict[str, Path]) -> np.ndarray:
    return np.asarray(Image.open(photos["bus.jpg"]).convert("RGB").resize((W, H)))


@pytest.fixture(scope="module")
def zidane(photos: dict[str, Path]) -> np.ndarray:
    return np.asarray(Image.open(photos["zidane.jpg"]).convert("RGB").resize((400, 224)))


@pytest.fixture(scope="module")
def encoder_calls(segmenter: SAM2Segmenter, bus: np.ndarray) -> list[int]:
    """The batch size of each image-encoder run; the bus is embedded once here under key "bus"."""
    calls: list[int] = []
    model = segmenter._predictor.model
    original = model.forward_image

    def counting(image):  # type: ignore[no-untyped-def]
        calls.append(len(image))
        return original(image)

    model.forward_image = counting
    segmenter.set_image(bus, key="bus")
    assert calls == [1]
    return calls


def test_meets_the_segmenter_protocol(segmenter: SAM2Segmenter) -> None:
    assert isinstance(segmenter, Segmenter) and isinstance(segmenter, BatchSegmenter)
    assert segmenter.model_id == "sam2.1_hiera_tiny"


def test_missing_weights_name_the_file_and_the_import_command(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing) as raised:
        SAM2Segmenter(tmp_path, "small")
    message = str(raised.value)
    assert str(tmp_path / "full" / "sam2.1_hiera_small.pt") in message
    assert "labelwright models import DIR" in message
    assert isinstance(raised.value, FileNotFoundError)


def test_unknown_config_is_refused() -> None:
    with pytest.raises(ValueError, match="base_plus.*got 'huge'"):
        SAM2Segmenter(Path("unused"), "huge", random_init=True)


def test_loads_a_checkpoint_from_the_models_dir(segmenter: SAM2Segmenter, tmp_path: Path) -> None:
    import torch

    state = segmenter._predictor.model.state_dict()
    (tmp_path / "full").mkdir()
    torch.save({"model": state}, tmp_path / "full" / "sam2.1_hiera_tiny.pt")
    loaded = SAM2Segmenter(tmp_path, "tiny", device="cpu")
    for name, tensor in loaded._predictor.model.state_dict().items():
        assert torch.equal(tensor, state[name]), name
    with pytest.raises(RuntimeError, match="set_image"):
        loaded.segment(boxes=np.array([[0, 0, 10, 10]]))


@pytest.mark.slow
def test_boxes_in_masks_out(segmenter: SAM2Segmenter, encoder_calls: list[int], bus: np.ndarray) -> None:
    segmenter.set_image(bus, key="bus")
    boxes = np.array([[10, 20, 120, 200], [150, 40, 310, 230], [0, 0, W, H]], np.float32)
    masks, scores = segmenter.segment(boxes=boxes)
    assert masks.shape == (3, H, W) and masks.dtype == np.bool_
    assert scores.shape == (3,) and scores.dtype == np.float32
    assert np.isfinite(scores).all()


@pytest.mark.slow
def test_many_boxes_are_split_into_decoder_batches(
    segmenter: SAM2Segmenter, encoder_calls: list[int], bus: np.ndarray
) -> None:
    segmenter.set_image(bus, key="bus")
    boxes = np.array([[i, i, i + 50, i + 60] for i in range(0, 60, 10)], np.float32)
    whole, whole_scores = segmenter.segment(boxes=boxes)
    segmenter.box_batch = 4
    try:
        split, split_scores = segmenter.segment(boxes=boxes)
    finally:
        segmenter.box_batch = 64
    assert split.shape == (6, H, W)
    assert (split == whole).mean() > 0.999  # same masks up to float noise at the threshold
    np.testing.assert_allclose(split_scores, whole_scores, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("points", "labels"),
    [([[100, 120]], [1]), ([[100, 120], [20, 30]], [1, 0]), ([[100, 120]], None)],
)
def test_points_with_labels_give_one_mask(
    segmenter: SAM2Segmenter,
    encoder_calls: list[int],
    bus: np.ndarray,
    points: list[list[int]],
    labels: list[int] | None,
) -> None:
    segmenter.set_image(bus, key="bus")
    point_labels = None if labels is None else np.array(labels)
    masks, scores = segmenter.segment(points=np.array(points), point_labels=point_labels)
    assert masks.shape == (1, H, W) and masks.dtype == np.bool_
    assert scores.shape == (1,)


@pytest.mark.slow
def test_points_refine_one_box(segmenter: SAM2Segmenter, encoder_calls: list[int], bus: np.ndarray) -> None:
    segmenter.set_image(bus, key="bus")
    masks, scores = segmenter.segment(
        boxes=np.array([[10, 20, 120, 200]]), points=np.array([[60, 100]]), point_labels=np.array([1])
    )
    assert masks.shape == (1, H, W) and scores.shape == (1,)


@pytest.mark.slow
def test_no_boxes_give_no_masks(segmenter: SAM2Segmenter, encoder_calls: list[int], bus: np.ndarray) -> None:
    segmenter.set_image(bus, key="bus")
    masks, scores = segmenter.segment(boxes=np.zeros((0, 4)))
    assert masks.shape == (0, H, W) and scores.shape == (0,)


@pytest.mark.slow
def test_second_set_image_of_a_key_reuses_the_embedding(
    segmenter: SAM2Segmenter, encoder_calls: list[int], bus: np.ndarray
) -> None:
    box = np.array([[10, 20, 120, 200]])
    segmenter.set_image(bus, key="bus")
    first, first_score = segmenter.segment(boxes=box)
    runs = len(encoder_calls)
    segmenter.set_image(bus, key="bus")
    again, again_score = segmenter.segment(boxes=box)
    assert len(encoder_calls) == runs  # no encoder run for a cached key
    assert np.array_equal(first, again) and np.array_equal(first_score, again_score)


@pytest.mark.slow
def test_reused_keys_and_keyless_images_are_embedded_afresh(
    segmenter: SAM2Segmenter, encoder_calls: list[int], bus: np.ndarray
) -> None:
    runs = len(encoder_calls)
    segmenter.set_image(bus[:200, :300].copy(), key="bus")  # same key, different picture
    assert len(encoder_calls) == runs + 1
    masks, _ = segmenter.segment(boxes=np.array([[0, 0, 50, 50]]))
    assert masks.shape == (1, 200, 300)
    cached = segmenter.cache.keys()
    segmenter.set_image(bus)  # no key: embedded, never cached
    assert len(encoder_calls) == runs + 2
    assert segmenter.cache.keys() == cached


@pytest.mark.slow
@pytest.mark.parametrize(
    ("prompts", "message"),
    [
        ({}, "got neither"),
        ({"boxes": np.zeros((2, 3))}, r"\(n, 4\) xyxy, got shape \(2, 3\)"),
        ({"points": np.zeros((1, 3))}, r"\(k, 2\) xy"),
        ({"points": np.zeros((2, 2)), "point_labels": np.array([1, 2])}, "0 or 1, got \\[1, 2\\]"),
        ({"points": np.zeros((1, 2)), "boxes": np.zeros((2, 4))}, "exactly one box, got 2"),
        ({"boxes": np.zeros((1, 4)), "point_labels": np.array([1])}, "without points"),
    ],
)
def test_bad_prompts_are_refused(
    segmenter: SAM2Segmenter, encoder_calls: list[int], prompts: dict[str, np.ndarray], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        segmenter.segment(**prompts)


@pytest.mark.parametrize(
    "image", [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 4), np.uint8), np.zeros((10, 10, 3))]
)
def test_images_that_are_not_rgb_uint8_are_refused(segmenter: SAM2Segmenter, image: np.ndarray) -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        segmenter.set_image(image)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a & b).sum(axis=(1, 2)) / np.maximum((a | b).sum(axis=(1, 2)), 1)


@pytest.mark.slow
def test_a_batch_equals_set_image_then_segment_per_image(
    segmenter: SAM2Segmenter, encoder_calls: list[int], bus: np.ndarray, zidane: np.ndarray
) -> None:
    boxes = [
        np.array([[10, 20, 120, 200], [150, 40, 310, 230]]),
        np.zeros((0, 4)),
        np.array([[30, 10, 200, 220]]),
    ]
    images = [bus, bus[:100, :150].copy(), zidane]
    runs = len(encoder_calls)
    batched = segmenter.segment_batch(images, boxes, keys=["bus-b", "corner", "zidane"])
    assert encoder_calls[runs:] == [2]  # one encoder pass; the image without boxes is not embedded
    (bus_masks, bus_scores), (none_masks, none_scores), (zidane_masks, zidane_scores) = batched
    assert bus_masks.shape == (2, H, W) and zidane_masks.shape == (1, 224, 400)
    assert bus_masks.dtype == np.bool_ and bus_scores.dtype == np.float32 and bus_scores.shape == (2,)
    assert none_masks.shape == (0, 100, 150) and none_scores.shape == (0,) and none_scores.dtype == np.float32
    for image, image_boxes, (masks, scores) in zip(images, boxes, batched, strict=True):
        segmenter.set_image(image)
        alone, alone_scores = segmenter.segment(boxes=image_boxes)
        assert (iou(masks, alone) >= 0.99).all()
        np.testing.assert_allclose(scores, alone_scores, atol=1e-4)
    assert 0.05 < bus_masks.mean() < 0.95 and not np.array_equal(bus_masks[0], bus_masks[1])  # real masks
    segmenter.segment_batch([bus], [np.zeros((0, 4))])
    with pytest.raises(RuntimeError, match="set_image"):  # a batch leaves no image set
        segmenter.segment(boxes=boxes[0])


@pytest.mark.slow
def test_a_batch_reuses_and_fills_the_embedding_cache(
    segmenter: SAM2Segmenter, encoder_calls: list[int], bus: np.ndarray, zidane: np.ndarray
) -> None:
    box = np.array([[30, 10, 200, 220]], np.float32)
    segmenter.set_image(bus, key="bus")
    runs = len(encoder_calls)
    (bus_masks, _), (zidane_masks, _) = segmenter.segment_batch(
        [bus, zidane], [box, box], keys=["bus", "zid"]
    )
    assert encoder_calls[runs:] == [1]  # only zidane: the bus was cached under its key
    segmenter.set_image(zidane, key="zid")  # the click after auto-labeling: no encoder run
    assert encoder_calls[runs:] == [1]
    again, _ = segmenter.segment(boxes=box)
    assert np.array_equal(again, zidane_masks)
    assert ("sam2.1_hiera_tiny", "zid") in segmenter.cache.keys()


@pytest.mark.slow
def test_a_batch_decodes_in_box_batch_chunks(
    segmenter: SAM2Segmenter, encoder_calls: list[int], bus: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    segmenter.set_image(bus, key="bus")
    sizes: list[int] = []
    original = segmenter._predictor.predict

    def counting(**prompts):  # type: ignore[no-untyped-def]
        sizes.append(len(prompts["box"]))
        return original(**prompts)

    monkeypatch.setattr(segmenter._predictor, "predict", counting)
    monkeypatch.setattr(segmenter, "box_batch", 2)
    boxes = np.array([[i, i, i + 50, i + 60] for i in range(0, 50, 10)], np.float32)
    [(masks, scores)] = segmenter.segment_batch([bus], [boxes], keys=["bus"])
    assert sizes == [2, 2, 1] and masks.shape == (5, H, W) and scores.shape == (5,)


@pytest.mark.parametrize(
    ("images", "boxes", "keys", "message"),
    [
        ([np.zeros((8, 8, 3), np.uint8)], [], None, "1 images, got 0 boxes arrays and 1 keys"),
        ([np.zeros((8, 8, 3), np.uint8)], [np.zeros((0, 4))], ["a", "b"], "got 1 boxes arrays and 2 keys"),
        (
            [np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8)],
            [None, None],
            None,
            "image 1 must be RGB",
        ),
        ([np.zeros((8, 8, 3), np.uint8)], [np.zeros((2, 3))], None, r"\(n, 4\) xyxy, got shape \(2, 3\)"),
    ],
)
def test_bad_batches_are_refused(
    segmenter: SAM2Segmenter,
    images: list[np.ndarray],
    boxes: list[np.ndarray],
    keys: list[str] | None,
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        segmenter.segment_batch(images, boxes, keys=keys)


def test_an_empty_batch_is_empty(segmenter: SAM2Segmenter) -> None:
    assert segmenter.segment_batch([], []) == []


def test_precision_is_fp32_on_cpu_and_bfloat16_autocast_on_cuda(
    segmenter: SAM2Segmenter, monkeypatch: pytest.MonkeyPatch
) -> None:
    import contextlib

    import torch

    assert segmenter.precision == "fp32" and isinstance(segmenter._autocast(), contextlib.nullcontext)
    monkeypatch.setattr(segmenter, "precision", "bf16")  # what a CUDA device resolves to
    with pytest.warns(UserWarning, match="CUDA is not available"):  # only here, on a CPU machine
        context = segmenter._autocast()
    assert isinstance(context, torch.autocast) and context.fast_dtype == torch.bfloat16
    with pytest.raises(ValueError, match="'bf16' needs a CUDA device, got device 'cpu'"):
        SAM2Segmenter(Path("unused"), "tiny", device="cpu", random_init=True, precision="bf16")
