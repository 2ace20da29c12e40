"""SAM 2.1 via the ``sam2`` package: the full stack's promptable segmenter.

``SAM2ImagePredictor.set_image`` runs the Hiera image encoder (seconds on CPU); ``predict`` then
answers box and point prompts in milliseconds. We keep the predictor's features per image key in an
LRU, so coming back to an image costs nothing. ``segment_batch`` embeds many images in one encoder
pass (``set_image_batch``) for the auto-label pipeline. Weights: ``full/sam2.1_hiera_<config>.pt``; tests
build the real architecture with ``build_sam2(cfg, ckpt_path=None)``, i.e. random weights.
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tools.backends.clip_verifier import pick_device, pick_precision
from tools.backends.embedding_cache import EmbeddingCache

# config name -> sam2's hydra config; the weights are the catalog's "sam2.1-hiera-<config>"
SAM2_CONFIGS: dict[str, str] = {
    "tiny": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "small": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "base_plus": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "large": "configs/sam2.1/sam2.1_hiera_l.yaml",
}


@dataclass
class _Embedding:
    """What ``SAM2ImagePredictor.set_image`` leaves behind, enough to restore it without the encoder."""

    features: dict[str, Any]
    orig_hw: tuple[int, int]


class SAM2Segmenter:
    """Box- and point-prompted masks from SAM 2.1, with one image embedding per image key.

    Args:
        models_dir: The models directory holding ``full/sam2.1_hiera_<config>.pt``.
        config: One of tiny, small, base_plus, large.
        device: "cpu", "cuda" or "auto" (cuda when available).
        random_init: Build the architecture with random weights instead of loading the file (tests).
        cache: Where embeddings are kept; pass one to share it, or get an LRU of ``cache_size``.
        cache_size: Embeddings kept when no cache is passed.
        box_batch: Boxes per mask-decoder call, bounding memory for images with many objects.
        precision: "auto" (bfloat16 autocast on CUDA where the card has it, else fp16; fp32 on CPU),
            "fp32", "bf16" or "fp16" (CUDA only). Weights stay fp32; encoder and decoder run under
            ``torch.autocast``, as the SAM 2 authors run it. The resolved one is ``self.precision``.
    """

    def __init__(
        self,
        models_dir: Path,
        config: str = "tiny",
        *,
        device: str = "auto",
        random_init: bool = False,
        cache: EmbeddingCache[_Embedding] | None = None,
        cache_size: int = 4,
        box_batch: int = 64,
        precision: str = "auto",
    ) -> None:
        if config not in SAM2_CONFIGS:
            raise ValueError(f"config must be one of {sorted(SAM2_CONFIGS)}, got {config!r}")
        if box_batch < 1:
            raise ValueError(f"box_batch must be at least 1, got {box_batch}")
        from tools.backends.torchvision_compat import ensure_torchvision
        from tools.models.resolve import resolve

        catalog_id = f"sam2.1-hiera-{config.replace('_', '-')}"
        checkpoint = None if random_init else resolve(Path(models_dir), catalog_id)

        ensure_torchvision()
        from sam2.build_sam import build_sam2
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        self.model_id = f"sam2.1_hiera_{config}"
        self.cache = cache if cache is not None else EmbeddingCache(cache_size)
        self.box_batch = box_batch
        ckpt_path = None if checkpoint is None else str(checkpoint)
        self.device = pick_device(device)
        self.precision = pick_precision(precision, self.device, half=("bf16", "fp16"))
        model = build_sam2(SAM2_CONFIGS[config], ckpt_path=ckpt_path, device=self.device)
        self._predictor = SAM2ImagePredictor(model)
        self._hw: tuple[int, int] | None = None

    def set_image(self, image: np.ndarray, key: Hashable | None = None) -> None:
        """Embed ``image`` (RGB uint8 ``(h, w, 3)``), or restore its embedding cached under ``key``.

        A cached entry whose size differs from ``image`` is recomputed: the key was reused for
        another picture, and a stale embedding would give masks of the wrong image.
        """
        hw = _check_image(image)
        cached = self._cached(key, hw)
        if cached is None:
            with self._autocast():
                self._predictor.set_image(image)
            cached = _Embedding(features=self._predictor._features, orig_hw=hw)
            if key is not None:
                self.cache.put((self.model_id, key), cached)
        self._restore(cached)

    def segment_batch(
        self,
        images: Sequence[np.ndarray],
        boxes: Sequence[np.ndarray],
        keys: Sequence[Hashable | None] | None = None,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Box masks for several images, embedding them in one ``set_image_batch`` encoder pass.

        Returns, per image, what ``set_image`` then ``segment(boxes=...)`` would: masks ``(n, h, w)``
        bool and scores ``(n,)`` float32. Images whose embedding is cached under their key are not
        encoded again; images with no boxes are not encoded at all (nothing to decode). The others'
        embeddings go into the cache under their keys, so a later click on them is free. Decoding
        runs per image through ``segment``, i.e. in ``box_batch`` chunks: sam2's ``predict_batch``
        is itself a loop of one decoder call per image, so it would buy nothing and lose the chunks.
        Afterwards no image is set: call ``set_image`` before ``segment``.
        """
        keys = [None] * len(images) if keys is None else list(keys)
        if len(boxes) != len(images) or len(keys) != len(images):
            raise ValueError(
                f"segment_batch needs one boxes array (and one key) per image: {len(images)} images, "
                f"got {len(boxes)} boxes arrays and {len(keys)} keys"
            )
        sizes = [_check_image(image, f"image {i}") for i, image in enumerate(images)]
        prompts = [_check_prompts(b, None, None)[0] for b in boxes]
        found = [self._cached(key, hw) for key, hw in zip(keys, sizes, strict=True)]
        todo = [i for i, (e, b) in enumerate(zip(found, prompts, strict=True)) if e is None and len(b)]
        if todo:
            with self._autocast():
                self._predictor.set_image_batch([images[i] for i in todo])
            batch = self._predictor._features
            for row, i in enumerate(todo):
                found[i] = _Embedding(features=_one_image(batch, row), orig_hw=sizes[i])
                if keys[i] is not None:
                    self.cache.put((self.model_id, keys[i]), found[i])
        results = []
        for embedding, image_boxes, (h, w) in zip(found, prompts, sizes, strict=True):
            if embedding is None:  # no boxes: nothing was encoded
                results.append((np.zeros((0, h, w), bool), np.zeros(0, np.float32)))
                continue
            self._restore(embedding)
            results.append(self.segment(boxes=image_boxes))
        self._predictor.reset_predictor()
        self._hw = None
        return results

    def _cached(self, key: Hashable | None, hw: tuple[int, int]) -> _Embedding | None:
        """The embedding cached for ``key`` if it is of an image of size ``hw``, else None."""
        cached = None if key is None else self.cache.get((self.model_id, key))
        return cached if cached is not None and cached.orig_hw == hw else None

    def _restore(self, embedding: _Embedding) -> None:
        # The predictor keeps no other per-image state (see SAM2ImagePredictor.set_image).
        self._predictor.reset_predictor()
        self._predictor._features = embedding.features
        self._predictor._orig_hw = [embedding.orig_hw]
        self._predictor._is_image_set = True
        self._hw = embedding.orig_hw

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Half-precision autocast on CUDA (what the sam2 authors wrap around the predictor), else nothing."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        import torch

        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast("cuda", dtype=dtype)

    def segment(
        self,
        boxes: np.ndarray | None = None,
        points: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Masks ``(n, h, w)`` bool and scores ``(n,)`` float32, in pixels of the last set image.

        One mask per box; points alone, or points refining a single box, give one mask. A single
        point is ambiguous (part or whole?), so SAM's three candidates are asked for and the best
        scored one is kept, as the SAM authors recommend.
        """
        if self._hw is None:
            raise RuntimeError("segment() needs an image: call set_image() first")
        boxes, points, point_labels = _check_prompts(boxes, points, point_labels)
        h, w = self._hw
        if points is None:
            assert boxes is not None  # _check_prompts guarantees one kind of prompt
            if len(boxes) == 0:
                return np.zeros((0, h, w), bool), np.zeros(0, np.float32)
            step = self.box_batch
            parts = [self._predict(box=boxes[i : i + step]) for i in range(0, len(boxes), step)]
            return np.concatenate([m for m, _ in parts]), np.concatenate([s for _, s in parts])
        return self._predict(box=boxes, point_coords=points, point_labels=point_labels)

    def _predict(self, **prompts: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        single_point = prompts.get("box") is None and len(prompts["point_coords"]) == 1
        with self._autocast():
            masks, scores, _ = self._predictor.predict(**prompts, multimask_output=single_point)
        if masks.ndim == 3:  # one prompt: (c, h, w) candidates, not (n, c, h, w)
            masks, scores = masks[None], scores[None]
        best = scores.argmax(axis=1)
        rows = np.arange(len(masks))
        return masks[rows, best].astype(bool), scores[rows, best].astype(np.float32)


def _one_image(features: dict[str, Any], row: int) -> dict[str, Any]:
    """Image ``row`` of ``set_image_batch``'s features, shaped as ``set_image`` leaves them.

    Cloned so a cached entry does not keep the whole batch's tensors alive.
    """
    return {
        "image_embed": features["image_embed"][row : row + 1].clone(),
        "high_res_feats": [level[row : row + 1].clone() for level in features["high_res_feats"]],
    }


def _check_image(image: np.ndarray, name: str = "image") -> tuple[int, int]:
    """``(h, w)`` of an RGB uint8 image; ValueError naming the shape and dtype otherwise."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"{name} must be RGB uint8 (h, w, 3), got shape {image.shape} dtype {image.dtype}")
    return int(image.shape[0]), int(image.shape[1])


def _check_prompts(
    boxes: np.ndarray | None, points: np.ndarray | None, point_labels: np.ndarray | None
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Validate and convert prompts to float32/int32 arrays; raise ValueError naming what is wrong."""
    if boxes is None and points is None:
        raise ValueError("segment() needs boxes, points, or both; got neither")
    if boxes is not None:
        boxes = np.asarray(boxes, dtype=np.float32)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"boxes must be (n, 4) xyxy, got shape {boxes.shape}")
    if points is None:
        if point_labels is not None:
            raise ValueError("point_labels given without points")
        return boxes, None, None
    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
        raise ValueError(f"points must be (k, 2) xy with k >= 1, got shape {points.shape}")
    labels = np.ones(len(points), np.int32) if point_labels is None else np.asarray(point_labels, np.int32)
    if labels.shape != (len(points),) or not np.isin(labels, (0, 1)).all():
        raise ValueError(f"point_labels must be {len(points)} values of 0 or 1, got {labels.tolist()}")
    if boxes is not None and len(boxes) != 1:
        raise ValueError(f"points can refine exactly one box, got {len(boxes)} boxes")
    return boxes, points, labels
