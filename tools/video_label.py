"""``label_video``: label classes through a video's sampled frames as tracks with stable ids.

Per frame: detect the classes (the stack's Detector), follow each class with its own ByteTrack
(roboflow ``trackers``' ``ByteTrackTracker``, the successor of ``supervision.ByteTrack``, which
supervision 0.30 removed), segment each tracked box with the stack's Segmenter, and write one
proposed annotation per tracked object on that frame's ``Track`` (created the first time the
tracker names it, called ``"<label> <tracker id>"``). A box that barely moved since the previous
frame (IoU >= ``reuse_iou``) reuses that frame's mask, shifted with the box, instead of paying
for a segmenter call.

It is a resumable job with the shape of :class:`tools.auto_label.LabelJob`: item ``i`` is frame
``params['frame_ids'][i]`` (frames of one video are contiguous and in frame order); the runner
commits a frame's annotations and new tracks together with the cursor.

Resuming. A tracker's state (Kalman filters, lost tracks, the id counter) lives in memory. When a
job resumes after a crash, a cancel or in another process, the handler restarts tracking
deterministically: it replays the video's frames that this job already finished (detector and
tracker only: no segmenting, no writes), which reproduces the tracker state and tracker ids
exactly because both are deterministic for the same frames, then maps tracker ids back to the
``Track`` rows it wrote (by their names) and takes the previous frame's masks from the store.
Replaying costs one detection per finished frame of the current video (~30 ms on the lite stack).

Full stack. When the stack's segmenter is SAM 2.1, masks come from SAM 2.1's video predictor, a
window of frames at a time, prompted by the tracked boxes on key frames (every ``key_every``-th);
the writes stay per frame. See :mod:`tools.video_label_sam2`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlmodel import Session, col, select

from store.categories import ensure_categories
from store.models import Annotation, Image, Job, Track, Video
from tools.backends.exclusive import exclusive
from tools.lazy_models import ModelsOnFirstUse
from tools.pipeline import clip_to_box, load_rgb
from tools.video_label_sam2 import Window, frame_paths, lives, propagate_window, window_bounds
from tools.video_propagate import video_tracker
from tools.video_tracking import FrameTracker, Tracked, born, iou, shift_mask

KIND = "label_video"


@dataclass
class _VideoState:
    """Tracking of one video in one job, up to (not including) item ``next_index``."""

    job_id: int
    video_id: int
    next_index: int
    tracker: FrameTracker = field(default_factory=lambda: FrameTracker(rate=30.0))
    tracks: dict[tuple[str, int], int] = field(default_factory=dict)  # (label, tracker id) -> Track.id
    last: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # box, mask
    # Detections of the previous frame that started a track but have no id yet (ByteTrack names a
    # track when it matches a second time): the frame that names it writes them back there.
    spawned: list[Tracked] = field(default_factory=list)
    previous_image_id: int | None = None


class VideoLabelJob(ModelsOnFirstUse):
    """Job handler: item ``i`` is frame ``params['frame_ids'][i]``; see the module docstring."""

    def __init__(
        self,
        *,
        home: Path,
        backends_factory: Callable[[], Any],
        reuse_iou: float = 0.9,
        key_every: int = 5,
    ) -> None:
        if key_every < 1:
            raise ValueError(f"key_every must be at least 1 (every frame a key frame), got {key_every}")
        super().__init__(home=home, backends_factory=backends_factory)
        self.reuse_iou, self.key_every = reuse_iou, key_every
        self.state: _VideoState | None = None
        self.window: Window | None = None
        self.stats = {"frames": 0, "replayed": 0, "segmented": 0, "reused": 0, "propagated": 0}

    def total(self, params: dict[str, Any]) -> int:
        return len(params["frame_ids"])

    def process(self, session: Session, job: Job, index: int) -> None:
        image = session.get(Image, job.params["frame_ids"][index])
        if image is None or image.video_id is None:  # deleted since the job was queued
            self.state = None
            return
        done = session.exec(
            select(Annotation.id).where(Annotation.job_id == job.id, Annotation.image_id == image.id).limit(1)
        ).first()
        full = video_tracker(self.backends)  # SAM 2.1's video predictor on the full stack, else None
        if done is not None:  # delivered twice: its writes exist; the tracker replays it next time
            self.state = None if full is None else self.state  # a window stays valid: it is replayable
            return
        labels = job.params["classes"]
        categories = {
            c.name: c.id or 0 for c in ensure_categories(session, project_id=image.project_id, names=labels)
        }
        if full is not None:
            self._process_window(session, job, index, image, full, categories)
            return
        state = self._state_for(session, job, index, image.video_id)
        rgb = load_rgb(self.home, image)
        detector, threshold = self.backends.detector, float(job.params["threshold"])
        tracked, spawned = state.tracker.step(detector, rgb, labels, threshold, image.timestamp_s)
        new = born(set(state.tracks), state.spawned, tracked)
        previous = session.get(Image, state.previous_image_id) if new and state.previous_image_id else None
        writes = []
        if previous is not None:
            masks = self._masks(state, load_rgb(self.home, previous), previous, new)
            writes.append((previous, new, masks))
            state.last.update({(o.label, o.tracker_id): (o.box, m) for o, m in zip(new, masks, strict=True)})
        writes.append((image, tracked, self._masks(state, rgb, image, tracked)))
        self._write(session, job, image, state, writes, categories)
        state.last = {
            (o.label, o.tracker_id): (o.box, m) for o, m in zip(tracked, writes[-1][2], strict=True)
        }
        state.spawned, state.previous_image_id = spawned, image.id
        state.next_index = index + 1
        self.stats["frames"] += 1

    # -- full stack: SAM 2.1's video predictor, one window at a time (tools.video_label_sam2) ----

    def _process_window(
        self, session: Session, job: Job, index: int, image: Image, tracker: Any, categories: dict[str, int]
    ) -> None:
        window = self.window
        if window is None or window.job_id != job.id or index not in window.frames:
            window = self.window = self._compute_window(session, job, index, image.video_id or 0, tracker)
        objs, masks = window.frames[index]
        state = self.state
        assert state is not None  # _compute_window left the tracking state of this video
        model = f"{self.backends.detector.model_id}+bytetrack+{tracker.model_id}"
        self._write(session, job, image, state, [(image, objs, masks)], categories, model=model)
        self.stats["frames"] += 1
        self.stats["propagated"] += len(masks)

    def _compute_window(self, session: Session, job: Job, index: int, video_id: int, tracker: Any) -> Window:
        frame_ids = job.params["frame_ids"]
        start, end = _video_span(session, frame_ids, index, video_id)
        lo, hi = window_bounds(index, start, tracker.max_frames, end)
        state = self._state_for(session, job, lo, video_id)  # replays the video's frames before lo
        labels, threshold = job.params["classes"], float(job.params["threshold"])
        known, spawned = set(state.tracks), list(state.spawned)
        items, frames, steps = [], [], []
        for i in range(lo, hi):
            frame = session.get(Image, frame_ids[i])
            if frame is None:  # deleted since the job was queued: not part of the window
                continue
            rgb = load_rgb(self.home, frame)
            tracked, state.spawned = state.tracker.step(
                self.backends.detector, rgb, labels, threshold, frame.timestamp_s
            )
            items.append(i)
            frames.append(frame)
            steps.append((tracked, list(state.spawned)))
            state.previous_image_id = frame.id
        state.next_index = hi
        keys = [(i - start) % self.key_every == 0 for i in items]
        spans = lives(steps, known, spawned, keys)
        masks = propagate_window(tracker, frame_paths(self.home, frames), spans)
        return Window(job_id=job.id or 0, frames=dict(zip(items, masks, strict=True)))

    # -- tracking ----------------------------------------------------------------------------

    def _state_for(self, session: Session, job: Job, index: int, video_id: int) -> _VideoState:
        state = self.state
        if state is not None and (state.job_id, state.video_id, state.next_index) == (
            job.id,
            video_id,
            index,
        ):
            return state
        frame_ids = job.params["frame_ids"]
        start = index
        while start > 0 and _video_of(session, frame_ids[start - 1]) == video_id:
            start -= 1
        video = session.get(Video, video_id)
        rate = min(video.fps, video.sample_fps or video.fps) if video is not None else 30.0
        state = _VideoState(
            job_id=job.id or 0, video_id=video_id, next_index=start, tracker=FrameTracker(rate)
        )
        labels, threshold = job.params["classes"], float(job.params["threshold"])
        tracked: list[Tracked] = []
        for i in range(start, index):  # replay: the same frames give the same tracker state and ids
            frame = session.get(Image, frame_ids[i])
            if frame is None:
                continue
            rgb = load_rgb(self.home, frame)
            tracked, state.spawned = state.tracker.step(
                self.backends.detector, rgb, labels, threshold, frame.timestamp_s
            )
            state.previous_image_id = frame.id
            self.stats["replayed"] += 1
        state.tracks = _job_tracks(session, job.id or 0, video_id)
        if index > start:
            state.last = _stored_masks(session, job.id or 0, frame_ids[index - 1], state, tracked)
        state.next_index = index
        self.state = state
        return state

    # -- masks and writes ----------------------------------------------------------------------

    def _masks(self, state: _VideoState, rgb: np.ndarray, image: Image, tracked: list[Tracked]) -> list:
        masks: list[np.ndarray | None] = []
        fresh: list[int] = []
        for i, obj in enumerate(tracked):
            prev = state.last.get((obj.label, obj.tracker_id))
            if prev is not None and iou(prev[0], obj.box) >= self.reuse_iou:
                dx, dy = (
                    int(round(v)) for v in ((obj.box[:2] + obj.box[2:]) - (prev[0][:2] + prev[0][2:])) / 2
                )
                masks.append(clip_to_box(shift_mask(prev[1], dx, dy), obj.box))
                self.stats["reused"] += 1
            else:
                masks.append(None)
                fresh.append(i)
        if fresh:
            segmenter = self.backends.segmenter
            with exclusive(segmenter):
                segmenter.set_image(rgb, key=image.id)
                found, _ = segmenter.segment(boxes=np.stack([tracked[i].box for i in fresh]))
            for i, mask in zip(fresh, found, strict=True):
                masks[i] = clip_to_box(np.asarray(mask, dtype=bool), tracked[i].box)
            self.stats["segmented"] += len(fresh)
        return masks

    def _write(
        self,
        session: Session,
        job: Job,
        image: Image,
        state: _VideoState,
        writes: list[tuple[Image, list[Tracked], list[np.ndarray]]],
        categories: dict[str, int],
        *,
        model: str | None = None,
    ) -> None:
        """One change batch for this frame: its objects, and the first frames of tracks born here,
        written through the operations layer as the person who started the job."""
        from ops.annotations import NewAnnotation, add
        from ops.unit import within
        from store.masks import rle_from_mask
        from store.tracks import create_track
        from tools.auto_label import job_caller

        if not any(objs for _, objs, _ in writes):
            return
        labels = job.params["classes"]
        described = f"{KIND}: {', '.join(labels[:5])}{' ...' * (len(labels) > 5)} on {image.file_name}"
        model = model or f"{self.backends.detector.model_id}+bytetrack+{self.backends.segmenter.model_id}"
        with within(session, job_caller(job), image.project_id) as unit:
            batch = unit.batch(described)
            for target, objs, masks in writes:
                items = []
                for obj, mask in zip(objs, masks, strict=True):
                    if not mask.any():
                        continue
                    key = (obj.label, obj.tracker_id)
                    if key not in state.tracks:
                        track = create_track(
                            session,
                            batch=batch,
                            video_id=state.video_id,
                            category_id=categories[obj.label],
                            name=f"{obj.label} {obj.tracker_id}",
                        )
                        state.tracks[key] = track.id  # type: ignore[assignment]
                    items.append(
                        NewAnnotation(
                            category_id=categories[obj.label], mask=rle_from_mask(mask),
                            score=round(obj.confidence, 4), tool=KIND, model=model, prompt=obj.label,
                            threshold=float(job.params["threshold"]), job_id=job.id,
                            track_id=state.tracks[key],
                        )
                    )  # fmt: skip
                if items:
                    add(unit, target, items, described)


def _video_span(session: Session, frame_ids: list[int], index: int, video_id: int) -> tuple[int, int]:
    """``[start, end)``: the job items of the video that item ``index`` belongs to."""
    start, end = index, index + 1
    while start > 0 and _video_of(session, frame_ids[start - 1]) == video_id:
        start -= 1
    while end < len(frame_ids) and _video_of(session, frame_ids[end]) == video_id:
        end += 1
    return start, end


def _video_of(session: Session, image_id: int) -> int | None:
    return session.exec(select(Image.video_id).where(Image.id == image_id)).first()


def _job_tracks(session: Session, job_id: int, video_id: int) -> dict[tuple[str, int], int]:
    """(label, tracker id) -> Track.id for the tracks this job wrote in the video (names say which)."""
    ids = select(Annotation.track_id).where(
        Annotation.job_id == job_id, col(Annotation.track_id).is_not(None)
    )
    rows = session.exec(
        select(Track.id, Track.name).where(Track.video_id == video_id, col(Track.id).in_(ids))
    )
    out: dict[tuple[str, int], int] = {}
    for track_id, name in rows:
        label, _, tid = name.rpartition(" ")
        if label and tid.isdigit():
            out[(label, int(tid))] = int(track_id)  # type: ignore[arg-type]
    return out


def _stored_masks(
    session: Session, job_id: int, image_id: int, state: _VideoState, tracked: list[Tracked]
) -> dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]:
    """The previous frame's written masks, keyed like ``state.last``, with the replayed boxes."""
    from store.masks import mask_from_rle

    by_track = {track_id: key for key, track_id in state.tracks.items()}
    boxes = {(obj.label, obj.tracker_id): obj.box for obj in tracked}
    out = {}
    rows = session.exec(
        select(Annotation).where(Annotation.job_id == job_id, Annotation.image_id == image_id)
    )
    for ann in rows:
        key = by_track.get(ann.track_id)  # type: ignore[arg-type]
        if key is not None and key in boxes and ann.mask is not None:
            out[key] = (boxes[key], mask_from_rle(ann.mask).astype(bool))
    return out
