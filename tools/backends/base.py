"""The contracts every vision backend meets, and the value type they exchange.

Two model stacks (the intended YOLO-World/SAM2/CLIP one and the offline "lite" one) sit behind
these Protocols, so tools, jobs and the agent never know which is active.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass
class Detections:
    """Parallel arrays, one row per object (after roboflow/supervision's ``Detections``).

    ``xyxy`` is float32 ``(n, 4)`` in pixels; ``mask`` is bool ``(n, h, w)`` or None;
    ``confidence`` float32 ``(n,)``; ``label`` holds the user's prompt each row answers (e.g.
    "pedestrian"), ``data`` per-row extras such as the backend's own class name.
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    label: list[str]
    mask: np.ndarray | None = None
    data: dict[str, list[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        self.confidence = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        n = len(self.xyxy)
        if len(self.confidence) != n or len(self.label) != n:
            raise ValueError(
                f"Detections need one confidence and one label per box: expected {n}, "
                f"got {len(self.confidence)} confidences and {len(self.label)} labels"
            )
        if self.mask is not None and (self.mask.ndim != 3 or len(self.mask) != n):
            raise ValueError(f"mask must be (n, h, w) with n={n}, got shape {self.mask.shape}")
        for key, values in self.data.items():
            if len(values) != n:
                raise ValueError(f"data[{key!r}] needs {n} values, got {len(values)}")

    def __len__(self) -> int:
        return len(self.xyxy)

    @classmethod
    def empty(cls) -> Detections:
        return cls(xyxy=np.zeros((0, 4), np.float32), confidence=np.zeros(0, np.float32), label=[])


@runtime_checkable
class Detector(Protocol):
    """Finds objects named by text prompts. ``image`` is RGB uint8 ``(h, w, 3)``."""

    model_id: str

    def detect(self, image: np.ndarray, prompts: list[str], threshold: float) -> Detections: ...


@runtime_checkable
class Segmenter(Protocol):
    """Promptable segmentation: ``set_image`` pays for the embedding once, ``segment`` is cheap.

    ``key`` identifies the image (e.g. its store id) so a cache can keep several embeddings.
    ``boxes`` is ``(n, 4)`` xyxy; ``points`` ``(k, 2)`` xy with ``point_labels`` 1=object, 0=not.
    Returns bool masks ``(n, h, w)`` (one per box, or one for the point prompt) and scores.
    """

    model_id: str

    def set_image(self, image: np.ndarray, key: str | int | None = None) -> None: ...

    def segment(
        self,
        boxes: np.ndarray | None = None,
        points: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]: ...


@runtime_checkable
class BatchDetector(Detector, Protocol):
    """A detector that takes many images in one forward pass (the full stack's GPU path).

    ``precision`` is what it runs at: "fp32", "fp16" or "bf16". Results are in input order and
    equal ``detect`` per image wherever the preprocessing is the same.
    """

    precision: str

    def detect_batch(
        self, images: list[np.ndarray], prompts: list[str], threshold: float
    ) -> list[Detections]: ...


@runtime_checkable
class BatchSegmenter(Segmenter, Protocol):
    """A segmenter that embeds many images in one encoder pass and decodes each image's boxes.

    Returns per image what ``set_image`` then ``segment(boxes=...)`` would; ``keys`` let the
    embeddings be cached for later prompts on the same image.
    """

    precision: str

    def segment_batch(
        self,
        images: Sequence[np.ndarray],
        boxes: Sequence[np.ndarray],
        keys: Sequence[Hashable | None] | None = None,
    ) -> list[tuple[np.ndarray, np.ndarray]]: ...


@runtime_checkable
class Verifier(Protocol):
    """Scores how well each crop matches each label: ``(len(crops), len(labels))`` in [0, 1].

    A label the verifier cannot judge yields NaN in its column, never a made-up score.
    """

    model_id: str

    def score(self, crops: list[np.ndarray], labels: list[str]) -> np.ndarray: ...
