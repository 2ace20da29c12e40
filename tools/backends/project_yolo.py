"""A detector trained on a project's own labels (``labelwright train``): an ultralytics YOLO model
of the project's classes, closed-vocabulary like the lite detector but with the project's words.

ultralytics is imported with its network features off (see ``yolo_world._import_ultralytics``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from tools.backends.base import Detections
from tools.backends.vocab import UnknownLabel


class UnknownClass(UnknownLabel):
    """A label the project detector was not trained on; the message lists the ones it was."""

    def __init__(self, label: str, model_id: str, classes: list[str]) -> None:
        ValueError.__init__(
            self, f"cannot detect {label!r}: {model_id} was trained on {', '.join(classes)} only"
        )
        self.label = label


class ProjectYOLODetector:
    """Detects the classes it was trained on.

    Args:
        weights: The trained ``.pt`` file.
        classes: Its class names, index = class id.
        model_id: Reported in each annotation's provenance.
        imgsz: Inference size (the training size is right for it).
        device: "cpu" or "cuda".
    """

    def __init__(
        self, weights: Path, classes: list[str], *, model_id: str, imgsz: int = 640, device: str = "cpu"
    ) -> None:
        from tools.backends.yolo_world import _import_ultralytics

        ultralytics = _import_ultralytics()
        logging.getLogger("ultralytics").setLevel(logging.WARNING)  # it logs to stdout
        self.model_id, self.classes, self.imgsz, self.device = model_id, list(classes), imgsz, device
        self._yolo: Any = ultralytics.YOLO(str(weights), task="detect")

    def detect(self, image: np.ndarray, prompts: list[str], threshold: float) -> Detections:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"image must be RGB uint8 (h, w, 3), got shape {image.shape} dtype {image.dtype}"
            )
        wanted = []
        for prompt in prompts:
            if prompt not in self.classes:
                raise UnknownClass(prompt, self.model_id, self.classes)
            wanted.append(self.classes.index(prompt))
        bgr = np.ascontiguousarray(image[..., ::-1])
        boxes = self._yolo.predict(
            bgr, imgsz=self.imgsz, conf=threshold, classes=wanted, device=self.device, verbose=False
        )[0].boxes
        return Detections(
            xyxy=boxes.xyxy.cpu().numpy(),
            confidence=boxes.conf.cpu().numpy(),
            label=[self.classes[c] for c in boxes.cls.int().tolist()],
        )
