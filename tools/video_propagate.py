"""Correct one frame, propagate: re-follow a track from a fixed box or mask (lite stack).

:func:`follower` builds the ``follow`` generator :func:`ops.tracks.propagate_track` runs (one
frame per step, so a job can step it: :mod:`tools.propagate_job`): from the corrected box on frame
k it walks the later frames, detects the track's class on each (the stack's Detector), and keeps
the detection nearest the box predicted at constant velocity (from the track's motion into frame
k, then from the last two found boxes): the association step of trackers such as SORT/ByteTrack,
seeded with the person's box instead of a detection. A frame without such a detection is a gap;
after ``max_gap`` gaps in a row the object is lost and following stops there, so the track's
annotations after its last found frame stay as they were. Each found box gets a mask from the
stack's Segmenter, or the previous mask shifted with the box when the box barely moved
(IoU >= ``reuse_iou``, as in :mod:`tools.video_label`); the corrected mask is the first one
reused, so a person's fix carries forward.

On the full stack (a SAM 2.1 segmenter) :func:`sam2_follower` follows with SAM 2.1's video
predictor instead: the corrected mask is the prompt on frame k and the predictor's memory carries
it forward (:mod:`tools.backends.sam2_video`); :func:`follower_for` picks one by the stack.

:func:`propagate` is the synchronous call (the UI's button, the benchmark): ops with the stack's
follower. REST queues a job instead (:mod:`ops.propagation_job`, :mod:`tools.propagate_job`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ops.caller import Caller
from ops.tracks import Follow, Followed, Propagated, Seed, propagate_track
from ops.unit import Env
from store.models import Image
from tools.backends.exclusive import exclusive
from tools.video_tracking import iou, shift_mask


def _xyxy(bbox: list[float]) -> np.ndarray:
    x, y, w, h = bbox
    return np.array([x, y, x + w, y + h], dtype=np.float32)


def _rgb(path: Path) -> np.ndarray:
    from PIL import Image as PILImage

    with PILImage.open(path) as im:
        return np.asarray(im.convert("RGB"))


def follower(
    backends: Any,
    *,
    threshold: float = 0.3,
    max_move: float = 0.75,
    max_gap: int = 2,
    reuse_iou: float = 0.9,
    stats: dict[str, int] | None = None,
) -> Follow:
    """A ``follow`` for :func:`ops.tracks.propagate_track` over ``backends`` (detector, segmenter).

    On each later frame it keeps the detection of the track's class whose centre is nearest the
    predicted centre, if within ``max_move`` box sizes of it and of a similar size (area ratio
    0.4-2.5). Nearness, not IoU: a walking person 30 px wide moves ~25 px between frames sampled
    at 5 fps, so yesterday's box barely overlaps today's (vtest.avi: IoU 0.1). The prediction
    starts from the track's motion into frame k (its previous box), so the first step is right.
    """
    if max_move <= 0:
        raise ValueError(f"max_move must be > 0 (box sizes per frame), got {max_move!r}")
    counts = stats if stats is not None else {}
    for key in ("frames", "found", "segmented", "reused"):
        counts.setdefault(key, 0)

    def follow(seed: Seed, frames: list[tuple[Image, Path]]) -> Iterator[Followed | None]:
        from store.masks import mask_from_rle, rle_from_mask
        from tools.pipeline import clip_to_box

        box = _xyxy(seed.bbox)
        # The centre's motion per sampled frame (the box keeps its last size: detections' widths
        # jitter, and extrapolating each edge soon turns a box inside out).
        velocity = _shift(_xyxy(seed.previous_bbox), box) if seed.previous_bbox else np.zeros(4, np.float32)
        mask = mask_from_rle(seed.mask).astype(bool) if seed.mask is not None else None
        gap = 0
        for image, path in frames:
            rgb = _rgb(path)
            counts["frames"] += 1
            predicted = box + velocity * (gap + 1)
            dets = backends.detector.detect(rgb, [seed.label], threshold)
            rows = [i for i, name in enumerate(dets.label) if name == seed.label]
            best = _nearest(predicted, [dets.xyxy[i] for i in rows], max_move)
            if best is None:
                gap += 1
                if gap > max_gap:
                    return
                yield None
                continue
            new = np.asarray(dets.xyxy[rows[best]], dtype=np.float32)
            if mask is not None and iou(box, new) >= reuse_iou:
                dx, dy = (int(round(v)) for v in ((new[:2] + new[2:]) - (box[:2] + box[2:])) / 2)
                mask = clip_to_box(shift_mask(mask, dx, dy), new)
                counts["reused"] += 1
            else:
                with exclusive(backends.segmenter):
                    backends.segmenter.set_image(rgb, key=image.id)
                    masks, _ = backends.segmenter.segment(boxes=new[None])
                mask = clip_to_box(np.asarray(masks[0], dtype=bool), new)
                counts["segmented"] += 1
            velocity = _shift(box, new) / (gap + 1)
            box, gap = new, 0
            counts["found"] += 1
            score = round(float(dets.confidence[rows[best]]), 4)
            yield Followed(image.id or 0, mask=rle_from_mask(mask), score=score)

    return follow


def _shift(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The move of the centre from box ``a`` to box ``b``, as an xyxy offset (same on both corners)."""
    dx, dy = ((b[:2] + b[2:]) - (a[:2] + a[2:])) / 2
    return np.array([dx, dy, dx, dy], dtype=np.float32)


def _nearest(predicted: np.ndarray, boxes: list[np.ndarray], max_move: float) -> int | None:
    """Index of the box nearest ``predicted`` (centres, in box sizes) within ``max_move`` and of
    a similar size; None when there is none."""
    area = max(float((predicted[2] - predicted[0]) * (predicted[3] - predicted[1])), 1.0)
    centre = (predicted[:2] + predicted[2:]) / 2
    best, best_d = None, max_move
    for i, b in enumerate(boxes):
        ratio = float((b[2] - b[0]) * (b[3] - b[1])) / area
        d = float(np.hypot(*((b[:2] + b[2:]) / 2 - centre))) / np.sqrt(area)
        if 0.4 <= ratio <= 2.5 and d <= best_d:
            best, best_d = i, d
    return best


def sam2_follower(tracker: Any, *, max_gap: int = 2, stats: dict[str, int] | None = None) -> Follow:
    """A ``follow`` over SAM 2.1's video predictor (:class:`~tools.backends.sam2_video.SAM2VideoTracker`):
    the corrected mask (or box, when the annotation has none) prompts the seed frame and the
    predictor's memory carries it forward; ``max_gap`` empty masks in a row end it (the object
    left or is hidden). It follows at most the tracker's ``max_frames`` per call."""
    counts = stats if stats is not None else {}
    for key in ("frames", "found"):
        counts.setdefault(key, 0)

    def follow(seed: Seed, frames: list[tuple[Image, Path]]) -> Iterator[Followed | None]:
        from store.masks import mask_from_rle

        mask = mask_from_rle(seed.mask).astype(bool) if seed.mask is not None else None
        box = None if mask is not None else _xyxy(seed.bbox)
        gap = 0
        paths = [seed.path, *(path for _, path in frames)]
        for index, got, score in tracker.track(paths, mask=mask, box=box):
            image = frames[index - 1][0]
            counts["frames"] += 1
            rle = storable(got) if got.any() else None  # None for noise too: as good as lost here
            if rle is None:
                gap += 1
                if gap > max_gap:
                    return
                yield None
                continue
            gap = 0
            counts["found"] += 1
            yield Followed(image.id or 0, mask=rle, score=round(score, 4))

    return follow


def storable(mask: np.ndarray) -> dict[str, Any] | None:
    """The mask's largest connected part with its holes filled, as RLE, or None when even that is
    over the store's run-length limit. A video predictor's mask can carry specks and holes (and,
    with random weights, is all noise); one object is one solid part."""
    import cv2

    from store.masks import check_rle_limits, rle_from_mask

    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n < 2:
        return None
    largest = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    contours, _ = cv2.findContours(largest, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    solid = cv2.drawContours(np.zeros_like(largest), contours, -1, 1, thickness=cv2.FILLED).astype(bool)
    rle = rle_from_mask(solid)
    try:
        check_rle_limits(rle)
    except ValueError:
        return None
    return rle


def follower_for(backends: Any, *, threshold: float = 0.3) -> Follow:
    """The follower for the stack: SAM 2.1's video predictor when its segmenter is SAM 2.1 (the
    full stack), else the lite detector-and-IoU follower. Decided when it runs, so the models
    load only after the operation's permission check."""

    def follow(seed: Seed, frames: list[tuple[Image, Path]]) -> Iterator[Followed | None]:
        tracker = video_tracker(backends)
        chosen = sam2_follower(tracker) if tracker is not None else follower(backends, threshold=threshold)
        yield from chosen(seed, frames)

    return follow


def video_tracker(backends: Any) -> Any:
    """The SAM 2.1 video tracker sharing the stack's SAM 2.1 weights (built once), or None."""
    from tools.backends.sam2_segmenter import SAM2Segmenter

    segmenter = backends.segmenter
    if not isinstance(segmenter, SAM2Segmenter):
        return None
    tracker = getattr(segmenter, "_video_tracker", None)
    if tracker is None:
        from tools.backends.sam2_video import SAM2VideoTracker

        tracker = SAM2VideoTracker.from_segmenter(segmenter)
        segmenter._video_tracker = tracker  # type: ignore[attr-defined]
    return tracker


def propagate(
    env: Env,
    caller: Caller | None,
    project_id: int,
    track_id: int,
    from_frame: int,
    backends: Any,
    *,
    to_frame: int | None = None,
    threshold: float = 0.3,
) -> Propagated:
    """Re-follow ``track_id`` from its annotation on ``from_frame`` with the stack's models, as one
    undoable change (see :func:`ops.tracks.propagate_track`). ``backends`` is touched only after
    the permission check, so a lazily loading stack loads nothing for a refused call."""
    return propagate_track(
        env, caller, project_id, track_id, from_frame,
        follow=follower_for(backends, threshold=threshold), to_frame=to_frame,
        model=lambda: model_name(backends),
    )  # fmt: skip


def model_name(backends: Any) -> str:
    """The provenance a propagated annotation records: SAM 2.1's video predictor, or the lite
    stack's detector and segmenter."""
    tracker = video_tracker(backends)
    if tracker is not None:
        return tracker.model_id
    return f"{backends.detector.model_id}+iou-follow+{backends.segmenter.model_id}"
