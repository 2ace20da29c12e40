"""The label_video job: tracks with stable ids, masks per frame, exact resume, on real and synthetic clips."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlmodel import col, select

from ops.errors import Invalid, NotFound
from ops.jobs import video_frames
from store.db import new_session, open_engine
from store.ingest import ingest
from store.jobs import create_job, update_progress
from store.models import Annotation, Image, Job, Track
from store.tracks import list_tracks
from tests.store.video_clips import SQUARES, moving_squares
from tests.tools.conftest import FakeSegmenter
from tools.backends.base import Detections
from tools.video_label import KIND, VideoLabelJob
from tools.video_tracking import shift_mask


class SquareDetector:
    """Finds the bright squares of the synthetic clip (connected components): deterministic."""

    model_id = "square-detector"

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, image: np.ndarray, prompts: list[str], threshold: float) -> Detections:
        import cv2

        self.calls += 1
        n, _, stats, _ = cv2.connectedComponentsWithStats((image[..., 0] > 170).astype(np.uint8))
        boxes = [(x, y, x + w, y + h) for x, y, w, h, area in stats[1:n] if area > 100]
        return Detections(
            xyxy=np.array(boxes).reshape(-1, 4),
            confidence=[0.9] * len(boxes),
            label=[prompts[0]] * len(boxes),
        )


@dataclass
class Backends:
    detector: Any = field(default_factory=SquareDetector)
    segmenter: Any = field(default_factory=FakeSegmenter)


@pytest.fixture
def squares(tmp_path: Path):
    home = tmp_path / "home"
    engine = open_engine(home / "labelwright.db")
    with new_session(engine) as session:
        ingest(session, home=home, project_name="p", source=moving_squares(tmp_path / "squares.mp4"))
    yield engine, home
    engine.dispose()


def run(engine, handler: VideoLabelJob, params: dict, *, stop_at: int | None = None, job_id=None) -> int:
    """What the job runner does: process an item, then commit the cursor with its writes."""
    with new_session(engine) as session:
        if job_id is None:
            job_id = create_job(
                session, project_id=1, kind=KIND, params=params, total=handler.total(params)
            ).id
        job = session.get_one(Job, job_id)
        for index in range(job.cursor, stop_at if stop_at is not None else job.total):
            handler.process(session, job, index)
            job = update_progress(session, job_id=job_id, cursor=index + 1)
    return job_id


def rows(engine, job_id: int) -> list[tuple[int, str, list[float]]]:
    with new_session(engine) as session:
        found = session.exec(
            select(Image.frame_index, Track.name, Annotation.bbox)
            .join(Image, col(Image.id) == Annotation.image_id)
            .join(Track, col(Track.id) == Annotation.track_id)
            .where(Annotation.job_id == job_id)
            .order_by(col(Image.frame_index), col(Track.name))
        )
        return [(f, n, [round(v, 1) for v in b]) for f, n, b in found]


def params_of(engine, videos=None) -> dict:
    """The params ops.jobs.start_label gives a video job (without queueing one)."""
    with new_session(engine) as session:
        video_ids, frames = video_frames(session, 1, videos)
    return {"classes": ["person"], "video_ids": video_ids, "frame_ids": frames, "threshold": 0.3}


def test_each_square_is_one_track_through_every_frame_it_shows(squares) -> None:
    engine, home = squares
    handler = VideoLabelJob(home=home, backends_factory=Backends)
    job_id = run(engine, handler, params_of(engine))
    with new_session(engine) as session:
        tracks = list_tracks(session, project_id=1)
    spans = sorted((t.first_frame, t.last_frame, t.annotations) for t in tracks)
    assert spans == [(0, 19, 20), (0, 19, 20), (10, 19, 10)]  # no switch, no fragment, no ghost
    per_frame = {}
    for frame, name, bbox in rows(engine, job_id):
        per_frame.setdefault(frame, []).append((name, bbox))
    assert len(per_frame) == 20 and all(len(v) == (2 if f < 10 else 3) for f, v in per_frame.items())
    # the track that starts at frame 10 is the third square, where it really is
    late = [t for t in tracks if t.first_frame == 10][0]
    with new_session(engine) as session:
        ann = session.exec(select(Annotation).where(Annotation.track_id == late.id)).first()
    x0, y0, _ = SQUARES[2]
    assert abs(ann.bbox[0] - x0) < 3 and abs(ann.bbox[1] - y0) < 3


def test_a_resumed_job_writes_exactly_what_an_uninterrupted_one_does(squares) -> None:
    engine, home = squares
    params = params_of(engine)
    whole = run(engine, VideoLabelJob(home=home, backends_factory=Backends), params)
    first = VideoLabelJob(home=home, backends_factory=Backends)
    resumed = run(engine, first, params, stop_at=13)
    second = VideoLabelJob(home=home, backends_factory=Backends)  # a new process: no tracker state
    run(engine, second, params, job_id=resumed)
    assert second.stats["replayed"] == 13 and second.backends.detector.calls == 20
    assert rows(engine, resumed) == rows(engine, whole)
    with new_session(engine) as session:  # the resumed half continued the same Track rows
        assert len(set(session.exec(select(Annotation.track_id).where(Annotation.job_id == resumed)))) == 3


def test_masks_of_boxes_that_barely_moved_are_reused(squares) -> None:
    engine, home = squares
    handler = VideoLabelJob(home=home, backends_factory=Backends, reuse_iou=0.7)  # 6 px of 40: IoU 0.74
    run(engine, handler, params_of(engine))
    assert handler.stats["reused"] > 0 and handler.stats["segmented"] == 3  # one call per new track
    strict = VideoLabelJob(home=home, backends_factory=Backends, reuse_iou=0.99)
    run(engine, strict, params_of(engine))
    assert strict.stats["reused"] == 0 and strict.stats["segmented"] == 50


def test_an_item_delivered_twice_writes_once(squares) -> None:
    engine, home = squares
    params = params_of(engine)
    handler = VideoLabelJob(home=home, backends_factory=Backends)
    job_id = run(engine, handler, params, stop_at=3)
    with new_session(engine) as session:
        job = session.get_one(Job, job_id)
        before = len(rows(engine, job_id))
        handler.process(session, job, 2)
        session.commit()
    assert len(rows(engine, job_id)) == before


def test_params_need_videos(tmp_path: Path, photos) -> None:
    engine = open_engine(tmp_path / "labelwright.db")
    with new_session(engine) as session:
        ingest(session, home=tmp_path, project_name="p", source=photos["bus.jpg"].parent)
        with pytest.raises(Invalid, match="the project has no videos to label"):
            video_frames(session, 1, None)
        with pytest.raises(NotFound, match=r"videos \[7\] are not videos of this project"):
            video_frames(session, 1, [7])
    engine.dispose()


@pytest.mark.parametrize(("dx", "dy"), [(0, 0), (3, -2), (-5, 4)])
def test_shift_mask(dx: int, dy: int) -> None:
    mask = np.zeros((20, 30), dtype=bool)
    mask[5:10, 8:15] = True
    moved = shift_mask(mask, dx, dy)
    assert moved.sum() == mask.sum()
    assert moved[5 + dy, 8 + dx] and moved[9 + dy, 14 + dx]


@pytest.mark.slow
def test_lite_stack_on_people_walking(tmp_path: Path, clips, models_dir: Path) -> None:
    """vtest.avi at 5 fps, first 10 sampled frames, lite detector + ByteTrack + GrabCut masks."""
    from tools.backends.stacks import build_backends

    home = tmp_path / "home"
    engine = open_engine(home / "labelwright.db")
    with new_session(engine) as session:
        ingest(session, home=home, project_name="p", source=clips["vtest.avi"], sample_fps=5)
    params = params_of(engine)
    params["frame_ids"] = params["frame_ids"][:10]
    backends = build_backends("lite", models_dir, segmenter="lite-grabcut")
    handler = VideoLabelJob(home=home, backends_factory=lambda: backends)
    job_id = run(engine, handler, params)
    with new_session(engine) as session:
        tracks = list_tracks(session, project_id=1)
        frames = session.exec(select(Annotation.image_id).where(Annotation.job_id == job_id)).all()
        masks = session.exec(select(Annotation.mask).where(Annotation.job_id == job_id)).all()
    assert len(set(frames)) == 10 and all(m is not None for m in masks)
    assert any(t.annotations == 10 for t in tracks)  # at least one person followed through all ten
    assert len(tracks) <= 12  # a handful of people, not a new id per frame
    engine.dispose()
