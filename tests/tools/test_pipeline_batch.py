"""infer_batch on the full stack's real architectures (YOLO-World v2 s, SAM 2.1 tiny, CLIP
ViT-B/32; random weights, CPU): one call per model for the batch, and the same drafts as image by
image. Random weights find nothing, so a wrapper hands fixed boxes on after the real detector ran
on the batch (its time and its batch call are real)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from store.masks import mask_from_rle
from tools.backends.base import Detections
from tools.pipeline import infer, infer_batch, read_rgb

pytestmark = pytest.mark.slow


class FixedAfterReal:
    """The real detector's batch call, then two fixed boxes per image (relative to its size)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.model_id, self.calls = inner, inner.model_id, []

    def boxes(self, image: np.ndarray, prompts: list[str]) -> Detections:
        h, w = image.shape[:2]
        rel = np.array([[0.1, 0.1, 0.5, 0.6], [0.45, 0.3, 0.95, 0.9]])
        labels = [prompts[0], prompts[-1]]
        return Detections(xyxy=rel * [w, h, w, h], confidence=np.array([0.9, 0.7]), label=labels)

    def detect_batch(
        self, images: list[np.ndarray], prompts: list[str], threshold: float
    ) -> list[Detections]:
        self.calls.append(len(images))
        self.inner.detect_batch(images, prompts, threshold)
        return [self.boxes(image, prompts) for image in images]

    def detect(self, image: np.ndarray, prompts: list[str], threshold: float) -> Detections:
        return self.detect_batch([image], prompts, threshold)[0]


@pytest.fixture(scope="module")
def full() -> Iterator[Any]:
    from tests.tools.no_network import blocked_network
    from tools.backends.stacks import build_backends

    with blocked_network():
        stack = build_backends("full", Path("unused"), random_init=True, device="cpu")
        yield SimpleNamespace(
            detector=FixedAfterReal(stack.detector), segmenter=stack.segmenter, verifier=stack.verifier
        )


def test_one_model_call_per_batch_and_the_same_drafts_as_one_by_one(
    full: Any, photos: dict[str, Path]
) -> None:
    import skimage.data

    rgbs = [read_rgb(photos["bus.jpg"]), read_rgb(photos["zidane.jpg"]), skimage.data.astronaut()]
    ids = [11, 12, 13]
    labels = ["person", "bus"]
    one_by_one = [infer(full, rgb, labels, 0.3, i) for rgb, i in zip(rgbs, ids, strict=True)]
    full.detector.calls.clear()
    batched = infer_batch(full, rgbs, labels, 0.3, ids)
    assert full.detector.calls == [3]  # the detector saw the three images in one call
    assert full.segmenter.precision == full.verifier.precision == "fp32"  # CPU: full precision
    for alone, together in zip(one_by_one, batched, strict=True):
        assert together.image_id == alone.image_id and len(together.drafts) == len(alone.drafts) == 2
        for a, b in zip(alone.drafts, together.drafts, strict=True):
            ma, mb = mask_from_rle(a.mask), mask_from_rle(b.mask)
            assert (ma & mb).sum() / max((ma | mb).sum(), 1) >= 0.99  # SAM 2.1 through set_image_batch
            assert a.label == b.label and a.model == b.model
            assert b.verifier_score == pytest.approx(a.verifier_score, abs=1e-4)  # CLIP, crops together
        assert sum(together.timings.values()) > 0
