"""open_clip ViT-B-32 with random weights: real architecture, tokenizer and preprocessing, no download."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.tools.no_network import NetworkUsed, blocked_network
from tools.backends import clip_verifier
from tools.backends.base import Verifier
from tools.backends.clip_verifier import DEFAULT_CONTRAST, ClipVerifier, OpenClipTextEncoder, pick_precision
from tools.models.resolve import ModelMissing


@pytest.fixture(scope="module", autouse=True)
def _no_network() -> Iterator[None]:
    with blocked_network():
        yield


@pytest.fixture(scope="module")
def verifier() -> ClipVerifier:
    return ClipVerifier(Path("unused"), device="cpu", random_init=True)


@pytest.fixture(scope="module")
def crops(photos: dict[str, Path]) -> list[np.ndarray]:
    """Three crops of different sizes from a real photo (people, the bus, a corner)."""
    bus = np.asarray(Image.open(photos["bus.jpg"]).convert("RGB"))
    return [bus[400:900, 50:250], bus[200:700, 0:810], bus[:64, :48]]


def test_the_network_and_child_processes_are_blocked_here() -> None:
    with pytest.raises(NetworkUsed):
        socket.socket()
    with pytest.raises(NetworkUsed):
        subprocess.run(["pip", "--version"], check=False)


def test_meets_the_verifier_protocol(verifier: ClipVerifier) -> None:
    assert isinstance(verifier, Verifier)
    assert verifier.model_id == "open_clip_ViT-B-32"


def test_scores_are_probabilities_per_crop_and_label(verifier: ClipVerifier, crops: list[np.ndarray]) -> None:
    scores = verifier.score(crops, ["pedestrian", "bus", "dog"])
    assert scores.shape == (3, 3) and scores.dtype == np.float32
    assert ((scores >= 0) & (scores <= 1)).all()
    # The contrast prompts take their share of each row, so labels alone sum to less than one.
    assert (scores.sum(axis=1) < 1).all()


def test_a_single_label_is_not_trivially_certain(verifier: ClipVerifier, crops: list[np.ndarray]) -> None:
    scores = verifier.score(crops, ["pedestrian"])
    assert scores.shape == (3, 1)
    assert (scores < 1).all()


def test_without_contrast_prompts_rows_are_a_softmax_over_labels(
    verifier: ClipVerifier, crops: list[np.ndarray]
) -> None:
    verifier.contrast = ()
    try:
        scores = verifier.score(crops, ["pedestrian", "bus"])
    finally:
        verifier.contrast = DEFAULT_CONTRAST
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-5)


def test_batches_give_the_same_scores(verifier: ClipVerifier, crops: list[np.ndarray]) -> None:
    whole = verifier.score(crops, ["pedestrian", "bus"])
    verifier.batch_size = 2
    try:
        batched = verifier.score(crops, ["pedestrian", "bus"])
    finally:
        verifier.batch_size = 32
    np.testing.assert_allclose(batched, whole, atol=1e-5)


def test_no_crops_give_an_empty_table(verifier: ClipVerifier) -> None:
    assert verifier.score([], ["pedestrian", "bus"]).shape == (0, 2)


@pytest.mark.parametrize(
    ("crops", "labels", "message"),
    [
        ([np.zeros((8, 8, 3), np.uint8)], [], "at least one label"),
        ([np.zeros((0, 8, 3), np.uint8)], ["cat"], r"crop 0 .* got shape \(0, 8, 3\)"),
        ([np.zeros((8, 8), np.uint8)], ["cat"], "RGB uint8"),
        ([np.zeros((8, 8, 3), np.float32)], ["cat"], "dtype float32"),
    ],
)
def test_bad_input_is_refused(
    verifier: ClipVerifier, crops: list[np.ndarray], labels: list[str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        verifier.score(crops, labels)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"template": "a photo"}, "must contain '{label}'"), ({"batch_size": 0}, "at least 1, got 0")],
)
def test_bad_settings_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClipVerifier(Path("unused"), random_init=True, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("arch", "file"),
    [("ViT-B-32", "open_clip_ViT-B-32.safetensors"), ("ViT-B-16", "open_clip_ViT-B-16.safetensors")],
)
def test_missing_weights_name_the_file_and_the_import_command(tmp_path: Path, arch: str, file: str) -> None:
    with pytest.raises(ModelMissing) as raised:
        ClipVerifier(tmp_path, arch)
    message = str(raised.value)
    assert str(tmp_path / "full" / file) in message
    assert "labelwright models import DIR" in message


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".safetensors", ".bin"])
def test_loads_weights_from_the_models_dir(
    verifier: ClipVerifier, crops: list[np.ndarray], tmp_path: Path, suffix: str
) -> None:
    import torch
    from safetensors.torch import save_file

    (tmp_path / "full").mkdir()
    target = tmp_path / "full" / f"open_clip_ViT-B-32{suffix}"
    state = verifier._model.state_dict()
    if suffix == ".safetensors":
        save_file(state, target)
    else:
        torch.save(state, target)
    loaded = ClipVerifier(tmp_path, device="cpu")
    np.testing.assert_allclose(
        loaded.score(crops, ["pedestrian", "bus"]), verifier.score(crops, ["pedestrian", "bus"]), atol=1e-6
    )


def test_text_encoder_gives_unit_vectors_of_the_clip_width(verifier: ClipVerifier) -> None:
    encoder = verifier.text_encoder
    assert isinstance(encoder, OpenClipTextEncoder)
    features = encoder(["pedestrian", "red car", "a photo of a dog"])
    assert tuple(features.shape) == (3, 512) and encoder.width == 512
    np.testing.assert_allclose(features.norm(dim=-1).numpy(), 1.0, atol=1e-5)


def test_text_encoder_embeds_each_prompt_once(
    verifier: ClipVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoder = verifier.text_encoder
    model = encoder._model
    batches: list[int] = []
    original = model.encode_text

    def counting(tokens):  # type: ignore[no-untyped-def]
        batches.append(len(tokens))
        return original(tokens)

    monkeypatch.setattr(model, "encode_text", counting)
    first = encoder(["a zebra", "a tram"])
    again = encoder(["a tram", "a zebra", "a kite", "a tram"])
    assert batches == [2, 1]  # only "a kite" was new the second time
    assert (again[0] == first[1]).all() and (again[1] == first[0]).all() and (again[3] == first[1]).all()


def test_many_crops_take_one_forward_per_batch(
    verifier: ClipVerifier, crops: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    original = verifier._model.encode_image

    def counting(images):  # type: ignore[no-untyped-def]
        sizes.append(len(images))
        return original(images)

    monkeypatch.setattr(verifier._model, "encode_image", counting)
    monkeypatch.setattr(verifier, "batch_size", 4)
    scores = verifier.score(crops * 3, ["pedestrian"])
    assert sizes == [4, 4, 1] and scores.shape == (9, 1)
    np.testing.assert_allclose(scores[3:6], scores[:3], atol=1e-5)  # the same crops in another batch


@pytest.mark.parametrize(
    ("precision", "device", "half", "bf16_card", "expected"),
    [
        ("auto", "cpu", ("fp16",), True, "fp32"),
        ("fp32", "cuda", ("fp16",), True, "fp32"),
        ("auto", "cuda", ("fp16", "bf16"), True, "fp16"),
        ("auto", "cuda:1", ("bf16", "fp16"), True, "bf16"),
        ("auto", "cuda", ("bf16", "fp16"), False, "fp16"),  # pre-Ampere card: no bfloat16
        ("auto", "cuda", ("bf16",), False, "fp32"),
        ("bf16", "cuda", ("bf16", "fp16"), True, "bf16"),
    ],
)
def test_precision_resolves_per_device(
    monkeypatch: pytest.MonkeyPatch,
    precision: str,
    device: str,
    half: tuple[str, ...],
    bf16_card: bool,
    expected: str,
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_card)
    assert pick_precision(precision, device, half) == expected


@pytest.mark.parametrize(
    ("precision", "device", "message"),
    [
        ("half", "cpu", r"one of \['auto', 'fp32', 'fp16', 'bf16'\], got 'half'"),
        ("fp16", "cpu", "'fp16' needs a CUDA device, got device 'cpu'.*slow or unsupported"),
        ("bf16", "cuda", r"'bf16' is not supported here: expected one of \['auto', 'fp32', 'fp16'\]"),
    ],
)
def test_impossible_precisions_are_refused(precision: str, device: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pick_precision(precision, device, half=("fp16",))


def test_auto_precision_is_fp32_on_cpu_and_a_cpu_half_request_fails_before_loading(
    verifier: ClipVerifier,
) -> None:
    assert verifier.precision == "fp32"
    assert verifier._model.visual.conv1.weight.dtype == verifier._dtype
    with pytest.raises(ValueError, match="needs a CUDA device"):
        ClipVerifier(Path("unused"), device="cpu", random_init=True, precision="fp16")


def test_the_half_path_casts_its_inputs_and_scores_like_fp32(
    crops: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """fp16 forced on CPU (slow there, fine for a check): open_clip's mixed precision and our casts
    give the fp32 scores of the same random weights to within half-precision rounding."""
    import torch

    torch.manual_seed(0)
    full = ClipVerifier(Path("unused"), device="cpu", random_init=True)
    monkeypatch.setattr(clip_verifier, "pick_precision", lambda *_, **__: "fp16")
    torch.manual_seed(0)
    half = ClipVerifier(Path("unused"), device="cpu", random_init=True)
    assert half.precision == "fp16" and half._model.visual.conv1.weight.dtype == torch.float16
    expected = full.score(crops, ["pedestrian", "bus"])
    np.testing.assert_allclose(half.score(crops, ["pedestrian", "bus"]), expected, atol=2e-3)
