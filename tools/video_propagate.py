"""Correct one frame, propagate: re-follow a track from a fixed box or mask (lite stack).

:func:`follower` builds the ``follow`` callable :func:`ops.tracks.propagate_track` runs: from the
corrected box on frame k it walks the later frames, detects the track's class on each (the
stack's Detector), and keeps the detection that best overlaps the box predicted from the last
two found boxes (constant velocity; the association step of IoU trackers such as SORT/ByteTrack,
seeded with the person's box instead of a detection). A frame without such a detection is a gap;
after ``max_gap`` gaps in a row the object is lost and following stops there, so the track's
annotations after its last found frame stay as they were. Each found box gets a mask from the
stack's Segmenter, or the previous mask shifted with the box when the box barely moved
(IoU >= ``reuse_iou``, as in :mod:`tools.video_label`); the corrected mask is the first one
reused, so a person's fix carries forward.

:func:`propagate` is the one call surfaces make (REST, UI, agent): ops with this follower.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ops.caller import Caller
from ops.tracks import Follow, Followed, Propagated, Seed, propagate_track
from ops.unit import Env
from store.models import Image
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
    min_iou: float = 0.3,
    max_gap: int = 2,
    reuse_iou: float = 0.9,
    stats: dict[str, int] | None = None,
) -> Follow:
    """A ``follow`` for :func:`ops.tracks.propagate_track` over ``backends`` (detector, segmenter)."""
    if not 0.0 < min_iou <= 1.0:
        raise ValueError(f"min_iou must be in (0, 1], got {min_iou!r}")
    counts = stats if stats is not None else {}
    for key in ("frames", "found", "segmented", "reused"):
        counts.setdefault(key, 0)

    def follow(seed: Seed, frames: list[tuple[Image, Path]]) -> tuple[list[Followed], int]:
        from store.masks import mask_from_rle, rle_from_mask
        from tools.pipeline import clip_to_box

        box, velocity = _xyxy(seed.bbox), np.zeros(4, dtype=np.float32)
        mask = mask_from_rle(seed.mask).astype(bool) if seed.mask is not None else None
        found: list[Followed] = []
        covered, gap = seed.frame_index, 0
        for image, path in frames:
            rgb = _rgb(path)
            counts["frames"] += 1
            predicted = box + velocity * (gap + 1)
            dets = backends.detector.detect(rgb, [seed.label], threshold)
            rows = [i for i, name in enumerate(dets.label) if name == seed.label]
            scored = [(iou(predicted, dets.xyxy[i]), i) for i in rows]
            best = max(scored, default=(0.0, -1))
            if best[0] < min_iou:
                gap += 1
                if gap > max_gap:
                    break
                continue
            new = np.asarray(dets.xyxy[best[1]], dtype=np.float32)
            if mask is not None and iou(box, new) >= reuse_iou:
                dx, dy = (int(round(v)) for v in ((new[:2] + new[2:]) - (box[:2] + box[2:])) / 2)
                mask = clip_to_box(shift_mask(mask, dx, dy), new)
                counts["reused"] += 1
            else:
                backends.segmenter.set_image(rgb, key=image.id)
                masks, _ = backends.segmenter.segment(boxes=new[None])
                mask = clip_to_box(np.asarray(masks[0], dtype=bool), new)
                counts["segmented"] += 1
            velocity = (new - box) / (gap + 1)
            box, gap, covered = new, 0, int(image.frame_index or 0)
            score = round(float(dets.confidence[best[1]]), 4)
            found.append(Followed(image.id or 0, mask=rle_from_mask(mask), score=score))
            counts["found"] += 1
        return found, covered

    return follow


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
        follow=follower(backends, threshold=threshold), to_frame=to_frame, model=lambda: model_name(backends),
    )  # fmt: skip


def model_name(backends: Any) -> str:
    """The provenance a propagated annotation records: the stack's detector and segmenter."""
    return f"{backends.detector.model_id}+iou-follow+{backends.segmenter.model_id}"
