"""The lite detector: CenterNet or NanoDet (COCO-80, TF.js graphs converted to ONNX) on onnxruntime.

The vocabulary is closed: prompts are mapped to COCO names by ``vocab.to_coco`` and an unknown
prompt raises ``UnknownLabel`` before the model runs. Rows carry the user's prompt as ``label`` and
the COCO name in ``data["class_name"]``. When two prompts map to the same class (``person`` and
``pedestrian``), its boxes are labelled with the first one, so no box is reported twice. NMS runs
per prompt, not per class: asked for "vehicle", a bus also scored as a truck is one vehicle.

Both models take the whole image stretched to their square input (how they were trained and how
the human library feeds them); boxes are scaled back per axis.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from tools.backends.base import Detections
from tools.backends.vocab import COCO80, to_coco

Arch = Literal["centernet", "nanodet"]
INPUT_SIZE: dict[str, int] = {"centernet": 512, "nanodet": 416}
_NANODET_MEAN = np.array([103.53, 116.28, 123.675], np.float32)  # BGR, NanoDet's own normalisation
_NANODET_STD = np.array([57.375, 57.12, 58.395], np.float32)
_NANODET_STRIDES = (8, 16, 32)


def decode_centernet(rows: np.ndarray, size: int = 512) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CenterNet rows ``[n, 6]`` (x1, y1, x2, y2 in input px, score, class) -> unit boxes, scores, classes."""
    rows = np.asarray(rows, np.float32).reshape(-1, 6)
    return (rows[:, :4] / size).clip(0, 1), rows[:, 4], rows[:, 5].round().astype(int)


def decode_nanodet(
    outputs: list[np.ndarray], size: int = 416, threshold: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NanoDet's six outputs -> boxes in [0, 1], scores, classes for every (cell, class) above threshold.

    Per stride s the grid is ``size / s`` cells a side; scores ``[1, g*g, 80]`` are already sigmoid,
    box bins ``[1, g*g, 4 * 11]`` give each side's distance as the expectation of a softmax over
    0..10, in units of s (Generalized Focal Loss), measured from the cell centre.
    """
    boxes, scores, classes = [], [], []
    for stride in _NANODET_STRIDES:
        cells = (size // stride) ** 2
        cls = next(o for o in outputs if o.shape[1] == cells and o.shape[2] == len(COCO80))[0]
        bins = next(o for o in outputs if o.shape[1] == cells and o.shape[2] != len(COCO80))[0]
        cell, cid = np.nonzero(cls > threshold)
        if len(cell) == 0:
            continue
        logits = bins[cell].reshape(len(cell), 4, -1)
        prob = np.exp(logits - logits.max(-1, keepdims=True))
        prob /= prob.sum(-1, keepdims=True)
        dist = (prob * np.arange(logits.shape[-1], dtype=np.float32)).sum(-1) * stride
        grid = size // stride
        cx, cy = (cell % grid + 0.5) * stride, (cell // grid + 0.5) * stride
        xyxy = np.stack([cx - dist[:, 0], cy - dist[:, 1], cx + dist[:, 2], cy + dist[:, 3]], 1)
        boxes.append(xyxy / size)
        scores.append(cls[cell, cid])
        classes.append(cid)
    if not boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, int)
    return np.concatenate(boxes).clip(0, 1), np.concatenate(scores), np.concatenate(classes)


def nms_grouped(xyxy: np.ndarray, scores: np.ndarray, groups: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy NMS within each group, by decreasing score."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    suppressed = np.zeros(len(scores), bool)
    area = (xyxy[:, 2] - xyxy[:, 0]).clip(0) * (xyxy[:, 3] - xyxy[:, 1]).clip(0)
    for i in order:
        if suppressed[i]:
            continue
        keep.append(int(i))
        w = (np.minimum(xyxy[i, 2], xyxy[:, 2]) - np.maximum(xyxy[i, 0], xyxy[:, 0])).clip(0)
        h = (np.minimum(xyxy[i, 3], xyxy[:, 3]) - np.maximum(xyxy[i, 1], xyxy[:, 1])).clip(0)
        overlap = w * h / np.maximum(area[i] + area - w * h, 1e-9)
        suppressed |= (overlap > iou) & (groups == groups[i])
    return np.array(keep, int)


def open_session(model: Path, threads: int | None) -> Any:
    """An onnxruntime CPU session for ``model`` with ``threads`` intra-op threads (None: its default).

    Its threads sleep between operators instead of spinning: on a 2-core machine the audit runs the
    detector while the verifier works in another thread, and spinning threads burn the core the
    other needs (measured on the planted audit at load 14: 1.16 CPU-s a run with spinning, 0.84
    without, findings the same; ISNet at 320 px: 0.49 vs 0.40 CPU-s, no slower).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


class LiteDetector:
    """Detector Protocol over a COCO-80 ONNX model; the session opens on first use.

    Args:
        model: ``centernet.onnx`` or ``nanodet.onnx``.
        arch: which decoder to use; by default the file name's stem.
        threads: onnxruntime intra-op threads (None: its default).
        nms_iou: IoU above which a lower-scored box of the same class is dropped.
    """

    def __init__(
        self,
        model: Path,
        *,
        arch: Arch | None = None,
        threads: int | None = None,
        nms_iou: float = 0.5,
        model_id: str | None = None,
    ) -> None:
        model = Path(model)
        if not model.is_file():
            raise FileNotFoundError(f"detector model not found: {model}")
        arch = arch or model.stem  # type: ignore[assignment]
        if arch not in INPUT_SIZE:
            raise ValueError(f"arch must be one of {sorted(INPUT_SIZE)}, got {arch!r}")
        self.arch: Arch = arch  # type: ignore[assignment]
        self.model_id = model_id or f"lite-{arch}"
        self.model, self.threads, self.nms_iou = model, threads, nms_iou
        self._session: Any = None

    def _run(self, image: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes (normalised), scores and COCO class ids of every candidate above threshold."""
        import cv2

        if self._session is None:
            self._session = open_session(self.model, self.threads)
        size = INPUT_SIZE[self.arch]
        resized = cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        name = self._session.get_inputs()[0].name
        if self.arch == "centernet":
            (rows,) = self._session.run(["tower_0/detections:0"], {name: resized[None]})
            xyxy, scores, classes = decode_centernet(rows[0], size)
            keep = scores >= threshold
            return xyxy[keep], scores[keep], classes[keep]
        bgr = (resized[:, :, ::-1] - _NANODET_MEAN) / _NANODET_STD
        outputs = self._session.run(None, {name: bgr.transpose(2, 0, 1)[None]})
        return decode_nanodet(outputs, size, threshold)

    def detect(self, image: np.ndarray, prompts: list[str], threshold: float) -> Detections:
        """Boxes of the COCO classes the prompts name, scored at least ``threshold``."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image (h, w, 3), got {image.dtype} {image.shape}")
        if not 0 <= threshold <= 1:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        prompt_of: dict[int, str] = {}
        for prompt in prompts:
            for name in to_coco(prompt):
                prompt_of.setdefault(COCO80.index(name), prompt)
        if not prompt_of:
            return Detections.empty()
        xyxy, scores, classes = self._run(image, threshold)
        wanted = np.isin(classes, list(prompt_of))
        xyxy, scores, classes = xyxy[wanted], scores[wanted], classes[wanted]
        prompts = sorted(set(prompt_of.values()))
        keep = nms_grouped(
            xyxy, scores, np.array([prompts.index(prompt_of[int(c)]) for c in classes]), self.nms_iou
        )
        h, w = image.shape[:2]
        xyxy = xyxy[keep] * np.array([w, h, w, h], np.float32)
        return Detections(
            xyxy=xyxy,
            confidence=scores[keep],
            label=[prompt_of[int(c)] for c in classes[keep]],
            data={"class_name": [COCO80[int(c)] for c in classes[keep]]},
        )
