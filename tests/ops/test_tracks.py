"""Track operations on a real ingested clip: policy, one undo step each, and propagate from a fix."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlmodel import col, select

from ops import history
from ops import tracks as ops_tracks
from ops.errors import Forbidden, Invalid, NotFound
from store.db import new_session
from store.models import Annotation, Image
from tests.ops.video_clip import Clip, true_box, who
from tests.tools.conftest import FakeSegmenter
from tests.tools.test_video_label import SquareDetector
from tools.video_propagate import propagate


def state(clip: Clip) -> list[tuple[int, int | None, int, list[float]]]:
    with new_session(clip.env.engine) as s:
        rows = s.exec(
            select(Annotation).where(col(Annotation.track_id).is_not(None)).order_by(col(Annotation.id))
        )
        return [(a.id, a.track_id, a.category_id, a.bbox) for a in rows]


def test_list_tracks_by_video_and_class(squares_clip: Clip) -> None:
    clip = squares_clip
    found = ops_tracks.list_tracks(clip.env, who(clip, "viewer"), clip.project_id, video_id=clip.video_id)
    assert [(t.id, t.label, t.annotations, t.first_frame, t.last_frame) for t in found] == [
        (clip.a, "person", 20, 0, 19), (clip.b, "person", 10, 0, 9), (clip.c, "person", 10, 10, 19),
    ]  # fmt: skip
    assert ops_tracks.list_tracks(clip.env, who(clip, "viewer"), clip.project_id, label="bus") == []
    frames = ops_tracks.track_frames(clip.env, who(clip, "viewer"), clip.project_id, clip.c)
    assert [f.frame_index for f in frames] == list(range(10, 20))
    with pytest.raises(Forbidden):
        ops_tracks.list_tracks(clip.env, who(clip, "outsider"), clip.project_id)
    with pytest.raises(NotFound):
        ops_tracks.get_track(clip.env, who(clip, "viewer"), clip.project_id, 9999)


def test_rename_is_one_undo_step(squares_clip: Clip) -> None:
    clip = squares_clip
    before = state(clip)
    with pytest.raises(Forbidden):
        ops_tracks.rename_track(clip.env, who(clip, "viewer"), clip.project_id, clip.a, label="car")
    done = ops_tracks.rename_track(clip.env, who(clip, "annotator"), clip.project_id, clip.a, label="car")
    assert done.changed == 20 and done.batch_id
    assert ops_tracks.get_track(clip.env, who(clip, "viewer"), clip.project_id, clip.a).label == "car"
    history.step(clip.env, who(clip, "annotator"), clip.project_id, "undo")
    assert state(clip) == before


def test_merge_split_delete_each_undo(squares_clip: Clip) -> None:
    clip = squares_clip
    env, pid, ann = clip.env, clip.project_id, who(clip, "annotator")
    before = state(clip)
    merged = ops_tracks.merge_tracks(env, ann, pid, into=clip.b, others=[clip.c])
    assert merged.changed == 10
    assert ops_tracks.get_track(env, ann, pid, clip.b).annotations == 20
    with pytest.raises(NotFound):
        ops_tracks.get_track(env, ann, pid, clip.c)  # empty now
    with pytest.raises(Invalid, match="both have frame"):
        ops_tracks.merge_tracks(env, ann, pid, into=clip.a, others=[clip.b])
    history.step(env, ann, pid, "undo")
    assert state(clip) == before

    split = ops_tracks.split_track(env, ann, pid, clip.a, frame_index=12)
    assert split.changed == 8 and split.new_track_id not in (None, clip.a)
    assert ops_tracks.get_track(env, ann, pid, split.new_track_id).first_frame == 12
    with pytest.raises(Invalid, match="both sides"):
        ops_tracks.split_track(env, ann, pid, clip.a, frame_index=0)
    history.step(env, ann, pid, "undo")
    assert state(clip) == before

    deleted = ops_tracks.delete_track(env, ann, pid, clip.a)
    assert deleted.changed == 20
    assert [t.id for t in ops_tracks.list_tracks(env, ann, pid)] == [clip.b, clip.c]
    with pytest.raises(NotFound):
        ops_tracks.delete_track(env, ann, pid, 9999)
    history.step(env, ann, pid, "undo")
    assert state(clip) == before


def _corrupt_after(clip: Clip, frame: int) -> None:
    """Track A goes wrong after ``frame``: its boxes sit on the background (an id switch gone bad)."""
    with new_session(clip.env.engine) as s:
        rows = s.exec(
            select(Annotation, Image.frame_index)
            .join(Image, col(Image.id) == Annotation.image_id)
            .where(Annotation.track_id == clip.a)
        )
        for a, f in rows:
            if f > frame:
                a.bbox = [250.0, 190.0, 30.0, 30.0]
                s.add(a)
        s.commit()


@dataclass
class Backends:
    detector: SquareDetector
    segmenter: FakeSegmenter


def test_propagate_replaces_later_frames_as_one_change(squares_clip: Clip) -> None:
    clip = squares_clip
    env, pid, ann = clip.env, clip.project_id, who(clip, "annotator")
    _corrupt_after(clip, 10)
    before = state(clip)
    backends = Backends(SquareDetector(), FakeSegmenter())
    with pytest.raises(Forbidden):
        propagate(env, who(clip, "viewer"), pid, clip.a, 10, backends)
    assert backends.detector.calls == 0  # refused before any model time
    with pytest.raises(Invalid, match="no annotation on frame 25"):
        propagate(env, ann, pid, clip.a, 25, backends)

    done = propagate(env, ann, pid, clip.a, 10, backends)
    assert (done.created, done.deleted, done.to_frame) == (9, 9, 19)
    assert backends.detector.calls == 9
    frames = ops_tracks.track_frames(env, ann, pid, clip.a)
    assert [f.frame_index for f in frames] == list(range(20))
    for f in frames[11:]:
        x, y, w, h = f.bbox
        tx, ty, _, _ = true_box(1, f.frame_index)
        assert abs(x - tx) <= 3 and abs(y - ty) <= 3 and 36 <= w <= 44, (f.frame_index, f.bbox)
    with new_session(env.engine) as s:
        tools = {a.tool for a in s.exec(select(Annotation).where(Annotation.track_id == clip.a))}
    assert tools == {"", "propagate"}
    history.step(env, ann, pid, "undo")
    assert state(clip) == before


def test_propagate_stops_where_the_object_is_lost(squares_clip: Clip) -> None:
    clip = squares_clip
    env, pid, ann = clip.env, clip.project_id, who(clip, "annotator")
    backends = Backends(SquareDetector(), FakeSegmenter())
    # The seed on frame 5 is moved onto empty background: nothing there to follow.
    with new_session(env.engine) as s:
        seed = s.exec(
            select(Annotation).join(Image, col(Image.id) == Annotation.image_id)
            .where(Annotation.track_id == clip.a, Image.frame_index == 5)
        ).one()  # fmt: skip
        seed.bbox = [250.0, 190.0, 30.0, 30.0]
        s.add(seed)
        s.commit()
    before = state(clip)
    done = propagate(env, ann, pid, clip.a, 5, backends)
    assert (done.created, done.deleted, done.batch_id) == (0, 0, None)
    assert backends.detector.calls == 3  # two gaps allowed, the third frame gives up
    assert state(clip) == before
