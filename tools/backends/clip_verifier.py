"""CLIP via open_clip: the full stack's verifier, and the text encoder YOLO-World's prompts go through.

Weights: ``full/open_clip_ViT-B-32.safetensors`` (or ``.bin``) under the models dir, OpenAI's CLIP
ViT-B/32 by default, the text encoder YOLO-World v2 was trained against; another architecture
reads ``full/open_clip_<arch>.safetensors``. Tests build the same architecture
with ``pretrained=None`` (random weights), so every code path runs without a download.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tools.backends.embedding_cache import EmbeddingCache

if TYPE_CHECKING:
    import torch

DEFAULT_TEMPLATE = "a photo of a {label}"
# Scored beside the user's labels but never returned: with a single label a softmax over labels
# alone is always 1.0, so "is this crop a pedestrian?" needs something else to lose against.
DEFAULT_CONTRAST = ("a photo of the background", "a photo of something else")


def weights_path(models_dir: Path, relative: str, *, model_id: str, random_init: bool) -> Path | None:
    """The weights file ``models_dir/relative`` exactly, or None when building with random weights.

    For files the catalog names exactly (and whose alternatives are the same model in another
    format), prefer ``tools.models.resolve.resolve``: it also checks sizes and says where to get
    them. This is for the variants the catalog lists only as alternatives, such as YOLO-World m/l/x,
    where another size standing in would be wrong.

    Raises:
        ModelMissing: the file is absent; the message names the file, where it goes and the command.
    """
    if random_init:
        return None
    path = Path(models_dir) / relative
    if path.is_file():
        return path
    from tools.models.resolve import ModelMissing

    command = "labelwright models import DIR"
    raise ModelMissing(
        f"model {model_id!r}: {path} does not exist. It cannot be downloaded by labelwright: put "
        f"{path.name} in a folder DIR and run `{command}`, or copy it to {path}.",
        model_id=model_id,
        expected=path,
        command=command,
    )


def pick_device(device: str) -> str:
    """``device`` itself, or for "auto" cuda when available, else cpu."""
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


PRECISIONS = ("auto", "fp32", "fp16", "bf16")


def pick_precision(precision: str, device: str, half: tuple[str, ...]) -> str:
    """The precision a backend runs at on ``device``: "fp32", or one of its ``half`` kinds.

    "auto" is full precision on CPU and the first of ``half`` the GPU supports on CUDA (bf16 needs
    compute capability 8+, so an older card gets fp16 where the backend allows it). Asking for half
    precision on CPU is an error rather than a silent fallback: PyTorch's CPU half kernels are slow
    or missing (ultralytics itself refuses fp16 there), so the request cannot be honoured.

    Args:
        precision: One of PRECISIONS.
        device: A resolved device ("cpu", "cuda", "cuda:N"), see ``pick_device``.
        half: The reduced precisions this backend can run, preferred first.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    cuda = device.startswith("cuda")
    if precision == "fp32" or (precision == "auto" and not cuda):
        return "fp32"
    if precision != "auto" and precision not in half:
        raise ValueError(
            f"precision {precision!r} is not supported here: expected one of {['auto', 'fp32', *half]}"
        )
    if not cuda:
        raise ValueError(
            f"precision {precision!r} needs a CUDA device, got device {device!r}: half precision on CPU "
            "is slow or unsupported; use 'auto' or 'fp32'"
        )
    if precision != "auto":
        return precision
    import torch

    usable = [kind for kind in half if kind != "bf16" or torch.cuda.is_bf16_supported()]
    return usable[0] if usable else "fp32"


def load_open_clip(
    models_dir: Path, arch: str, *, device: str, random_init: bool, quick_gelu: bool, precision: str = "fp32"
) -> tuple[Any, Any, Any]:
    """Build an open_clip model, its image preprocessing and its tokenizer, in eval mode on ``device``.

    ``quick_gelu`` must match the weights: OpenAI's CLIP (what YOLO-World uses) was trained with
    QuickGELU, most LAION checkpoints with plain GELU; the wrong one loads fine and embeds badly.
    ``precision`` "fp16"/"bf16" is open_clip's own mixed precision (OpenAI's recipe: convolutions,
    linear and attention weights in half, LayerNorm in fp32); inputs must then be cast to it.
    """
    from tools.backends.torchvision_compat import ensure_torchvision
    from tools.models.resolve import resolve

    if random_init:
        checkpoint = None
    elif arch == "ViT-B-32":  # the catalog's entry: .safetensors, or open_clip's .bin
        checkpoint = resolve(Path(models_dir), "clip-vit-b-32")
    else:
        relative = f"full/open_clip_{arch}.safetensors"
        checkpoint = weights_path(models_dir, relative, model_id=f"open_clip_{arch}", random_init=False)
    ensure_torchvision()
    import open_clip

    model, _, preprocess = open_clip.create_model_and_transforms(
        arch,
        pretrained=None if checkpoint is None else str(checkpoint),
        force_quick_gelu=quick_gelu,
        pretrained_text=False,  # never fetch a text tower from a hub
        device=device,
        precision=precision,
    )
    model.eval()
    return model, preprocess, open_clip.get_tokenizer(arch)


class OpenClipTextEncoder:
    """Text prompts to L2-normalised embeddings ``(n, width)``, like ultralytics' CLIP text model.

    Each prompt's embedding is kept (LRU of ``cache_size``): the text tower costs about as much per
    prompt as the image tower per crop, and the same few labels come back with every image.
    """

    def __init__(self, model: Any, tokenizer: Any, device: str, cache_size: int = 1024) -> None:
        self._model = model
        self._tokenizer = tokenizer
        self._device = device
        self.width = int(model.text_projection.shape[-1])
        self.cache: EmbeddingCache[torch.Tensor] = EmbeddingCache(cache_size)

    @classmethod
    def from_models_dir(
        cls,
        models_dir: Path,
        arch: str = "ViT-B-32",
        *,
        device: str = "auto",
        random_init: bool = False,
        quick_gelu: bool = True,
    ) -> OpenClipTextEncoder:
        device = pick_device(device)
        import torch

        model, _, tokenizer = load_open_clip(
            models_dir, arch, device=device, random_init=random_init, quick_gelu=quick_gelu
        )
        model.visual = torch.nn.Identity()  # text only: free the image tower (~350 MB for ViT-B-32)
        return cls(model, tokenizer, device)

    def __call__(self, texts: list[str]) -> torch.Tensor:
        import torch

        found = {text: self.cache.get(text) for text in dict.fromkeys(texts)}
        missing = [text for text, feature in found.items() if feature is None]
        if missing:
            with torch.inference_mode():
                features = self._model.encode_text(self._tokenizer(missing).to(self._device))
            normalised = torch.nn.functional.normalize(features.float(), dim=-1)
            for text, feature in zip(missing, normalised, strict=True):
                self.cache.put(text, feature)
                found[text] = feature
        return torch.stack([found[text] for text in texts])


class ClipVerifier:
    """Scores crops against labels with CLIP: a softmax over the labels and the contrast prompts.

    Args:
        models_dir: The models directory holding the CLIP weights (see the module docstring).
        arch: An open_clip architecture name.
        device: "cpu", "cuda" or "auto" (cuda when available).
        random_init: Build the architecture with random weights instead of loading the file (tests).
        template: How a label becomes a prompt; must contain ``{label}``.
        contrast: Extra prompts in the softmax whose scores are not returned (see DEFAULT_CONTRAST).
        quick_gelu: Activation the weights were trained with (True for OpenAI's CLIP).
        batch_size: Crops per forward pass: ``score`` over many crops runs one forward per batch.
        precision: "auto" (fp16 on CUDA, fp32 on CPU), "fp32", "fp16" or "bf16" (CUDA only);
            the resolved one is ``self.precision``.
    """

    def __init__(
        self,
        models_dir: Path,
        arch: str = "ViT-B-32",
        *,
        device: str = "auto",
        random_init: bool = False,
        template: str = DEFAULT_TEMPLATE,
        contrast: tuple[str, ...] = DEFAULT_CONTRAST,
        quick_gelu: bool = True,
        batch_size: int = 32,
        precision: str = "auto",
    ) -> None:
        if "{label}" not in template:
            raise ValueError(f"template must contain '{{label}}', got {template!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.model_id = f"open_clip_{arch}"
        self.template = template
        self.contrast = contrast
        self.batch_size = batch_size
        self._device = pick_device(device)
        self.precision = pick_precision(precision, self._device, half=("fp16", "bf16"))
        self._model, self._preprocess, tokenizer = load_open_clip(
            models_dir,
            arch,
            device=self._device,
            random_init=random_init,
            quick_gelu=quick_gelu,
            precision=self.precision,
        )
        import torch

        self._dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[self.precision]
        self.text_encoder = OpenClipTextEncoder(self._model, tokenizer, self._device)

    def score(self, crops: list[np.ndarray], labels: list[str]) -> np.ndarray:
        """``(len(crops), len(labels))`` float32 probabilities in [0, 1]."""
        if not labels:
            raise ValueError("labels must name at least one label, got an empty list")
        for i, crop in enumerate(crops):
            if crop.ndim != 3 or crop.shape[2] != 3 or crop.dtype != np.uint8 or 0 in crop.shape[:2]:
                raise ValueError(
                    f"crop {i} must be a non-empty RGB uint8 (h, w, 3) array, "
                    f"got shape {crop.shape} dtype {crop.dtype}"
                )
        if not crops:
            return np.zeros((0, len(labels)), np.float32)
        import torch

        prompts = [self.template.format(label=label) for label in labels] + list(self.contrast)
        text = self.text_encoder(prompts)
        scale = self._model.logit_scale.exp().float()
        rows = []
        with torch.inference_mode():
            for start in range(0, len(crops), self.batch_size):
                batch = torch.stack([self._image_tensor(c) for c in crops[start : start + self.batch_size]])
                image = torch.nn.functional.normalize(self._model.encode_image(batch).float(), dim=-1)
                rows.append((scale * image @ text.T).softmax(dim=-1)[:, : len(labels)])
        return torch.cat(rows).cpu().numpy().astype(np.float32)

    def _image_tensor(self, crop: np.ndarray) -> torch.Tensor:
        from PIL import Image

        return self._preprocess(Image.fromarray(crop)).to(self._device, self._dtype)
