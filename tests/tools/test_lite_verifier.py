"""LiteVerifier: EfficientNet-Lite0 scores crops by the summed probability of a label's ImageNet classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tools.backends.base import Verifier
from tools.backends.lite_verifier import LiteVerifier, load_efficientnet_lite0, square_input

BUS_BOX = (15, 230, 805, 735)  # x1, y1, x2, y2 of the bus in bus.jpg, drawn by hand
TIE_BOX = (435, 435, 530, 720)  # the tie on the left in zidane.jpg


def _rgb(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def _crop(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x1, y1, x2, y2 = box
    return image[y1:y2, x1:x2]


@pytest.fixture(scope="module")
def verifier(models_dir: Path) -> LiteVerifier:
    weights = models_dir / "lite" / "efficientnet-lite0.pth"
    if not weights.is_file():
        pytest.skip(f"{weights} missing: run `labelwright models fetch lite-efficientnet`")
    return LiteVerifier(weights, threads=2)


def test_square_input_pads_instead_of_stretching() -> None:
    tall = np.full((200, 50, 3), 255, np.uint8)
    x = square_input(tall)
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    assert x[:, 112, 112].min() > 2.0  # the white strip is in the middle ...
    assert np.abs(x[:, 112, 5]).max() < 0.05  # ... and the sides are the (normalised) mean colour


@pytest.mark.parametrize("shape", [(0, 10, 3), (10, 10), (10, 10, 4)])
def test_square_input_rejects_bad_crops(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="crop"):
        square_input(np.zeros(shape, np.uint8))


def test_missing_weights_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="efficientnet"):
        LiteVerifier(tmp_path / "efficientnet-lite0.pth")


def test_mismatched_weights_are_refused(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "w.pth"
    torch.save({"_conv_stem.weight": torch.zeros(32, 3, 3, 3)}, path)
    with pytest.raises(ValueError, match="expected 296 tensors"):
        load_efficientnet_lite0(path)


def test_unverifiable_labels_give_nan_without_loading_the_model(tmp_path: Path) -> None:
    weights = tmp_path / "efficientnet-lite0.pth"
    weights.write_bytes(b"not loaded")
    scores = LiteVerifier(weights).score([np.zeros((8, 8, 3), np.uint8)] * 2, ["person", "giraffe"])
    assert scores.shape == (2, 2) and np.isnan(scores).all()


@pytest.mark.slow
def test_bus_crop_scores_high_for_bus_and_low_for_dog(
    verifier: LiteVerifier, photos: dict[str, Path]
) -> None:
    assert isinstance(verifier, Verifier)
    crop = _crop(_rgb(photos["bus.jpg"]), BUS_BOX)
    scores = verifier.score([crop], ["bus", "dog", "person", "vehicle"])
    assert scores.shape == (1, 4)
    bus, dog, person, vehicle = scores[0]
    assert bus > 0.5 and dog < 0.05 and np.isnan(person)
    assert vehicle >= bus


@pytest.mark.slow
def test_cat_tie_and_cup_score_high_for_their_labels(verifier: LiteVerifier, photos: dict[str, Path]) -> None:
    import skimage.data

    crops = [skimage.data.chelsea(), _crop(_rgb(photos["zidane.jpg"]), TIE_BOX), skimage.data.coffee()]
    scores = verifier.score(crops, ["cat", "tie", "dog", "cup"])
    assert scores[0, 0] > 0.8 and scores[0, 2] < 0.1
    assert scores[1, 1] > 0.5 and scores[1, 1] > scores[1, 0]
    assert scores[2, 3] > 0.8  # ImageNet calls it espresso; the vocabulary counts that as a cup
    assert ((scores >= 0) & (scores <= 1)).all()


@pytest.mark.slow
def test_batches_agree_with_single_crops(verifier: LiteVerifier) -> None:
    import skimage.data

    crops = [skimage.data.chelsea(), skimage.data.coffee(), skimage.data.astronaut()]
    together = verifier.score(crops, ["cat", "cup"])
    alone = np.concatenate([verifier.score([c], ["cat", "cup"]) for c in crops])
    np.testing.assert_allclose(together, alone, atol=1e-4)


def test_judgeable_labels_are_the_ones_scored(verifier: LiteVerifier) -> None:
    labels = ["person", "bus", "tie", "giraffe", "cat", "cup"]
    row = verifier.score([np.full((40, 30, 3), 128, np.uint8)], labels)[0]
    scored = {label for label, s in zip(labels, row, strict=True) if not np.isnan(s)}
    assert verifier.judgeable(labels) == scored
    assert scored >= {"bus", "cat", "cup"} and "person" not in scored
