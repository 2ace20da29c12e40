"""Full stack ``label_video``: SAM 2.1's video predictor masks the tracks, window by window.

When the stack's segmenter is SAM 2.1, :class:`tools.video_label.VideoLabelJob` masks tracks with
the video predictor (:meth:`~tools.backends.sam2_video.SAM2VideoTracker.track_many`) instead of
one segmenter call per box. A video's sampled frames are cut into windows of the predictor's
``max_frames`` (a session holds its frames at 1024x1024 on the CPU), aligned to the video's first
frame so a resumed job cuts the same windows. For one window:

- detector + ByteTrack run on every frame (as on the lite stack, the same deterministic tracker
  state the job replays on resume): they name the tracks and say on which frames each one lives,
  from the frame whose detection started it to the last frame the tracker still holds it;
- key frames (every ``key_every``-th frame of the video) give the prompts: each tracked box there,
  plus a track's first box when no key frame of the window sees it;
- the predictor propagates forward from the first prompt and backward from the last one, so a
  track's frames before its first key frame get masks too;
- each frame gets one mask per track that lives on it (the predictor's largest solid part).

The window is computed when the job reaches a frame it has not computed, and kept in memory; the
job then writes one frame per item, so the runner's per-frame cursor, no-loss and no-duplicate
guarantee are the lite stack's. A job resumed in the middle of a window replays the tracker to
the window's start and recomputes the window (the same frames and prompts give the same masks),
then writes only the frames not written yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from store.models import Image
from tools.video_tracking import Tracked, born


@dataclass
class Window:
    """Masks of one window of one job: job item index -> (tracked objects, bool masks)."""

    job_id: int
    frames: dict[int, tuple[list[Tracked], list[np.ndarray]]] = field(default_factory=dict)


@dataclass
class _Life:
    """Where one track lives in a window (positions in the window) and its prompts there."""

    start: int
    end: int
    boxes: dict[int, np.ndarray] = field(default_factory=dict)
    prompts: list[tuple[int, np.ndarray]] = field(default_factory=list)
    confidence: float = 0.0


def window_bounds(index: int, start: int, size: int, end: int) -> tuple[int, int]:
    """The window ``[lo, hi)`` of job items holding ``index``: windows of ``size`` items from the
    video's first item ``start``, cut at the video's end ``end`` (exclusive)."""
    if size < 1:
        raise ValueError(f"window size must be at least 1, got {size}")
    lo = start + (index - start) // size * size
    return lo, min(lo + size, end)


def lives(
    tracked_per_frame: list[tuple[list[Tracked], list[Tracked]]],
    known: set[tuple[str, int]],
    spawned: list[Tracked],
    keys: list[bool],
) -> dict[tuple[str, int], _Life]:
    """Each track's span and prompts in a window, from the tracker's output per frame.

    Args:
        tracked_per_frame: per window frame, ``(tracked, spawned)`` as ``FrameTracker.step`` gave.
        known: tracks named before this window (they may reach back to its first frame).
        spawned: the detections that started a track on the frame before the window.
        keys: per window frame, whether it is a key frame (its boxes are prompts).
    """
    out: dict[tuple[str, int], _Life] = {}
    previous = list(spawned)
    for pos, (tracked, spawned_here) in enumerate(tracked_per_frame):
        seen = known | set(out)
        for obj in born(seen, previous, tracked):  # named here, started on the frame before
            if pos > 0:
                life = out[(obj.label, obj.tracker_id)] = _Life(pos - 1, pos - 1, {pos - 1: obj.box})
                if keys[pos - 1]:
                    life.prompts.append((pos - 1, obj.box))
        for obj in tracked:
            key = (obj.label, obj.tracker_id)
            life = out.setdefault(key, _Life(0 if key in known else pos, pos))
            life.end, life.boxes[pos] = pos, obj.box
            life.confidence = max(life.confidence, obj.confidence)
            if keys[pos]:
                life.prompts.append((pos, obj.box))
        previous = list(spawned_here)
    for life in out.values():
        if not life.prompts:
            first = min(life.boxes)
            life.prompts.append((first, life.boxes[first]))
    return out


def propagate_window(
    tracker: Any,
    paths: list[Path],
    spans: dict[tuple[str, int], _Life],
) -> list[tuple[list[Tracked], list[np.ndarray]]]:
    """Per window frame, the tracks living on it with their predictor masks (solid, storable);
    a track whose mask is empty or noise on a frame has no annotation there."""
    from store.masks import mask_from_rle
    from tools.video_propagate import storable

    out: list[tuple[list[Tracked], list[np.ndarray]]] = [([], []) for _ in paths]
    if not spans:
        return out
    keys = sorted(spans)
    found = tracker.track_many(paths, {i + 1: spans[k].prompts for i, k in enumerate(keys)})
    for pos in range(len(paths)):
        for i, key in enumerate(keys):
            life = spans[key]
            if not life.start <= pos <= life.end or i + 1 not in found.get(pos, {}):
                continue
            mask, score = found[pos][i + 1]
            rle = storable(mask)
            if rle is None:
                continue
            solid = mask_from_rle(rle).astype(bool)
            box = life.boxes.get(pos, _bounds(solid))
            out[pos][0].append(Tracked(key[0], key[1], box, round(score, 4)))
            out[pos][1].append(solid)
    return out


def _bounds(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float32)


def frame_paths(home: Path, frames: list[Image]) -> list[Path]:
    """The stored JPEG of each frame (the predictor reads a folder of them)."""
    return [Path(home) / frame.path for frame in frames]
