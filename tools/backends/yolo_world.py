"""YOLO-World v2 via ultralytics: the full stack's open-vocabulary detector.

ultralytics' own ``set_classes`` builds a CLIP text encoder that it pip-installs from GitHub (or
downloads MobileCLIP) on first use; neither can work offline. We compute the prompt embeddings
with our own text encoder (open_clip's ViT-B/32 text tower by default, the encoder YOLO-World v2
was trained against) and set them on the model exactly as ``WorldModel.set_classes`` does:
``txt_feats`` (1, n, 512), the head's ``nc`` and the model's ``names``.

Weights: ``full/yolov8<size>-worldv2.pt`` plus ``full/open_clip_ViT-B-32.safetensors``. Tests build
the architecture from ultralytics' ``yolov8<size>-worldv2.yaml`` with random weights.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tools.backends.base import Detections
from tools.backends.clip_verifier import OpenClipTextEncoder, pick_device, pick_precision, weights_path

if TYPE_CHECKING:
    import torch

SIZES = ("s", "m", "l", "x")
TextEncoder = Callable[[list[str]], "torch.Tensor"]


def _import_ultralytics() -> Any:
    """Import ultralytics with its network features off.

    ``YOLO_OFFLINE`` makes its online check answer False without a DNS lookup (so no update check,
    no telemetry, no asset download) and ``YOLO_AUTOINSTALL=0`` stops it pip-installing missing
    packages. Both are read when ultralytics is first imported, hence set before it; if something
    imported it earlier, the flags its modules copied at import are switched off as well.
    """
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "0"
    from tools.backends.torchvision_compat import ensure_torchvision

    ensure_torchvision()
    import ultralytics
    import ultralytics.utils.checks
    import ultralytics.utils.events

    ultralytics.utils.ONLINE = False
    ultralytics.utils.checks.ONLINE = False
    ultralytics.utils.checks.AUTOINSTALL = False
    ultralytics.utils.events.events.enabled = False  # anonymous usage events sent after predict
    return ultralytics


class YOLOWorldDetector:
    """Detects objects named by free-text prompts with YOLO-World v2.

    Args:
        models_dir: The models directory holding ``full/yolov8<size>-worldv2.pt``.
        size: Model scale: s, m, l or x.
        device: "cpu", "cuda" or "auto" (cuda when available).
        random_init: Build the architecture from its yaml with random weights (tests).
        text_encoder: Texts to L2-normalised ``(n, 512)`` embeddings; default open_clip ViT-B-32
            from the same models dir (random weights too when ``random_init``).
        imgsz: Inference size; 640 is what the released weights were trained at.
        iou: Non-maximum suppression IoU threshold.
        max_det: Most boxes kept per image.
        precision: "auto" (fp16 on CUDA, fp32 on CPU), "fp32" or "fp16" (CUDA only): ultralytics'
            ``quantize=16``, which halves a copy of the model in its predictor. The resolved one is
            ``self.precision``. The prompt embeddings stay fp32; the model casts them to its input.
    """

    def __init__(
        self,
        models_dir: Path,
        size: str = "s",
        *,
        device: str = "auto",
        random_init: bool = False,
        text_encoder: TextEncoder | None = None,
        imgsz: int = 640,
        iou: float = 0.7,
        max_det: int = 300,
        precision: str = "auto",
    ) -> None:
        if size not in SIZES:
            raise ValueError(f"size must be one of {list(SIZES)}, got {size!r}")
        if imgsz < 32 or imgsz % 32:
            raise ValueError(f"imgsz must be a positive multiple of 32, got {imgsz}")
        self.model_id = f"yolov8{size}-worldv2"
        checkpoint = weights_path(
            models_dir, f"full/{self.model_id}.pt", model_id="yolo-world-v2", random_init=random_init
        )
        self.device = pick_device(device)
        self.precision = pick_precision(precision, self.device, half=("fp16",))
        self.imgsz, self.iou, self.max_det = imgsz, iou, max_det
        self._encode = text_encoder or OpenClipTextEncoder.from_models_dir(
            models_dir, device=self.device, random_init=random_init
        )
        ultralytics = _import_ultralytics()
        self._yolo = ultralytics.YOLOWorld(f"{self.model_id}.yaml" if checkpoint is None else str(checkpoint))
        self._yolo.model.to(self.device)
        self._width = int(self._yolo.model.txt_feats.shape[-1])
        self._prompts: list[str] = []

    @property
    def prompts(self) -> list[str]:
        """The prompts the model is currently set up for."""
        return list(self._prompts)

    def set_prompts(self, prompts: list[str]) -> None:
        """Embed ``prompts`` and make them the model's classes (what ``set_classes`` would do)."""
        if not prompts or not all(isinstance(p, str) and p.strip() for p in prompts):
            raise ValueError(f"prompts must be a non-empty list of non-empty strings, got {prompts!r}")
        if len(set(prompts)) != len(prompts):
            raise ValueError(f"prompts must be distinct, got {prompts!r}")
        if prompts == self._prompts:
            return
        import torch

        features = torch.nn.functional.normalize(self._encode(list(prompts)).float(), dim=-1)
        if tuple(features.shape) != (len(prompts), self._width):
            expected = (len(prompts), self._width)
            raise ValueError(f"text encoder must return {expected} embeddings, got {tuple(features.shape)}")
        model = self._yolo.model
        model.txt_feats = features.reshape(1, len(prompts), self._width).to(self.device)
        model.model[-1].nc = len(prompts)
        model.names = list(prompts)
        self._yolo.predictor = None  # its backend copied the old names; rebuilt on next predict
        self._prompts = list(prompts)

    def detect(self, image: np.ndarray, prompts: list[str], threshold: float) -> Detections:
        """Boxes for ``prompts`` in an RGB uint8 image, scored at least ``threshold``."""
        return self.detect_batch([image], prompts, threshold)[0]

    def detect_batch(
        self, images: list[np.ndarray], prompts: list[str], threshold: float
    ) -> list[Detections]:
        """``detect`` for several images in one forward pass; results in input order.

        ultralytics' ``LoadPilAndNumpy`` hands a list of arrays to the model as one batch whatever
        its ``batch`` argument says. Images of one shape are letterboxed as ``detect`` does (minimal
        padding), so their outputs equal one-by-one results to float noise; a batch of mixed shapes
        is padded to ``imgsz`` square, which moves scores and boxes slightly and costs more pixels
        (on CPU four mixed photos took 2.2 s batched against 1.3 s one by one).
        """
        for i, image in enumerate(images):
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                name = "image" if len(images) == 1 else f"image {i}"
                raise ValueError(
                    f"{name} must be RGB uint8 (h, w, 3), got shape {image.shape} dtype {image.dtype}"
                )
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        self.set_prompts(prompts)
        if not images:
            return []
        bgr = [np.ascontiguousarray(image[..., ::-1]) for image in images]  # ultralytics reads BGR
        results = self._yolo.predict(
            bgr,
            imgsz=self.imgsz,
            conf=threshold,
            iou=self.iou,
            max_det=self.max_det,
            device=self.device,
            quantize=16 if self.precision == "fp16" else None,
            verbose=False,
        )
        return [self._detections(result.boxes) for result in results]

    def _detections(self, boxes: Any) -> Detections:
        classes = boxes.cls.int().tolist()
        return Detections(
            xyxy=boxes.xyxy.float().cpu().numpy(),
            confidence=boxes.conf.float().cpu().numpy(),
            label=[self._prompts[c] for c in classes],
        )
