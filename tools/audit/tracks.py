"""Track checks: problems of one object through a video that no single frame shows.

- ``track_flicker``: the track is missing on sampled frames between frames it is on (a detector
  miss the tracker bridged, or an id that left and came back);
- ``track_jump``: its box centre moves farther between consecutive sampled frames than the box is
  large (an id switch to another object, or a wrong box);
- ``track_class_swap``: some of its annotations have another class than most of them;
- ``track_overlap``: two tracks of a video cover the same object on most frames they share (one
  object tracked twice).

Each finding sits on one annotation (the one a reviewer looks at first: the frame before a gap,
the frame after a jump, the odd class, the shorter track's first overlapping frame), so the
runner's closing rules (fixed, deleted, rejected) work as for every check. A track's order is its
video's sampled frames (``video_frames``), so a 5 fps sample is not flagged for the frames it
never kept.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass

from tools.audit.findings import AuditAnnotation, Finding, box_iou

FLICKER, JUMP, CLASS_SWAP, OVERLAP = "track_flicker", "track_jump", "track_class_swap", "track_overlap"
KINDS = frozenset({FLICKER, JUMP, CLASS_SWAP, OVERLAP})


@dataclass(frozen=True)
class TrackThresholds:
    short_gap: int = 2  # gaps up to this many sampled frames look like flicker (high confidence)
    max_jump: float = 1.0  # centre move per sampled frame, in box sizes (sqrt of the mean area)
    overlap_iou: float = 0.7  # two tracks this overlapped on a shared frame cover one object...
    overlap_share: float = 0.5  # ...on at least this share of their shared frames
    min_shared: int = 2  # ...sharing at least this many frames


def check_tracks(
    anns: list[AuditAnnotation], *, video_frames: dict[int, list[int]], t: TrackThresholds | None = None
) -> list[Finding]:
    """Track findings over ``anns`` (those with a track); ``video_frames`` maps each video id to its
    sampled frame indices."""
    t = t or TrackThresholds()
    tracks: dict[int, list[AuditAnnotation]] = defaultdict(list)
    for a in anns:
        if a.track_id is not None and a.frame_index is not None:
            tracks[a.track_id].append(a)
    out: list[Finding] = []
    for track_id, group in sorted(tracks.items()):
        group.sort(key=lambda a: (a.frame_index, a.id))
        order = {f: i for i, f in enumerate(video_frames.get(group[0].video_id or -1, []))}
        out.extend(_flicker(track_id, group, order, t))
        out.extend(_jumps(track_id, group, order, t))
        out.extend(_class_swaps(track_id, group))
    out.extend(_overlaps(tracks, t))
    return out


def _position(a: AuditAnnotation, order: dict[int, int]) -> int:
    return order.get(a.frame_index or 0, a.frame_index or 0)


def _flicker(track_id: int, group: list[AuditAnnotation], order: dict[int, int], t: TrackThresholds) -> list:
    out = []
    for before, after in zip(group, group[1:], strict=False):
        missing = _position(after, order) - _position(before, order) - 1
        if missing <= 0:
            continue
        short = missing <= t.short_gap
        out.append(
            Finding.about(
                before, FLICKER,
                f"track {track_id} is missing on {missing} sampled frame{'s' * (missing > 1)} between "
                f"frames {before.frame_index} and {after.frame_index}",
                0.4, 0.8 if short else 0.5,
                {"key": f"track{track_id}", "track_id": track_id, "missing": missing,
                 "from_frame": before.frame_index, "to_frame": after.frame_index},
            )
        )  # fmt: skip
    return out


def _centre(a: AuditAnnotation) -> tuple[float, float]:
    x, y, w, h = a.bbox
    return x + w / 2, y + h / 2


def _jumps(track_id: int, group: list[AuditAnnotation], order: dict[int, int], t: TrackThresholds) -> list:
    out = []
    for before, after in zip(group, group[1:], strict=False):
        steps = max(1, _position(after, order) - _position(before, order))
        (x0, y0), (x1, y1) = _centre(before), _centre(after)
        size = math.sqrt(max((before.bbox[2] * before.bbox[3] + after.bbox[2] * after.bbox[3]) / 2, 1.0))
        move = math.hypot(x1 - x0, y1 - y0) / size / steps
        if move <= t.max_jump:
            continue
        out.append(
            Finding.about(
                after, JUMP,
                f"track {track_id} jumps {move:.1f} box sizes per frame between frames "
                f"{before.frame_index} and {after.frame_index}",
                0.6, min(0.95, 0.5 + 0.15 * move),
                {"key": f"track{track_id}", "track_id": track_id, "move": round(move, 2),
                 "from_frame": before.frame_index, "other_id": before.id},
            )
        )  # fmt: skip
    return out


def _class_swaps(track_id: int, group: list[AuditAnnotation]) -> list:
    classes = Counter(a.category for a in group)
    if len(classes) < 2:
        return []
    main, n_main = classes.most_common(1)[0]
    return [
        Finding.about(
            a,
            CLASS_SWAP,
            f"track {track_id} is {main!r} on {n_main} frames but {a.category!r} on frame {a.frame_index}",
            0.6,
            n_main / len(group),
            {"key": f"track{track_id}", "track_id": track_id, "track_class": main},
        )  # fmt: skip
        for a in group
        if a.category != main
    ]


def _overlaps(tracks: dict[int, list[AuditAnnotation]], t: TrackThresholds) -> list:
    by_video: dict[int, list[int]] = defaultdict(list)
    for track_id, group in tracks.items():
        by_video[group[0].video_id or -1].append(track_id)
    out = []
    for ids in by_video.values():
        frames = {tid: {a.frame_index: a for a in tracks[tid]} for tid in ids}
        for i, a_id in enumerate(sorted(ids)):
            for b_id in sorted(ids)[i + 1 :]:
                shared = sorted(set(frames[a_id]) & set(frames[b_id]))
                if len(shared) < t.min_shared:
                    continue
                close = [
                    f for f in shared if box_iou(frames[a_id][f].bbox, frames[b_id][f].bbox) >= t.overlap_iou
                ]
                if len(close) < max(t.min_shared, t.overlap_share * len(shared)):
                    continue
                short, long_ = sorted((a_id, b_id), key=lambda k: (len(frames[k]), -k))
                first = frames[short][close[0]]
                out.append(
                    Finding.about(
                        first, OVERLAP,
                        f"track {short} covers the same object as track {long_} on {len(close)} of "
                        f"{len(shared)} shared frames",
                        0.7, len(close) / len(shared),
                        {"key": f"track{short}-{long_}", "track_id": short, "other_track": long_,
                         "frames": len(close), "shared": len(shared)},
                    )
                )  # fmt: skip
    return out
