"""Creating annotations on a video frame's track (an existing one, or a new one) on a real clip:
one undo step, the track's own video only, one annotation per frame, then propagate from it."""

from __future__ import annotations

import pytest
from sqlmodel import select

from ops import annotations, history
from ops import tracks as ops_tracks
from ops.annotations import NewAnnotation
from ops.errors import Forbidden, Invalid
from store.db import new_session
from store.models import Image
from tests.ops.test_tracks import Backends
from tests.ops.video_clip import Clip, true_box, who
from tests.tools.conftest import FakeSegmenter
from tests.tools.test_video_label import SquareDetector
from tools.video_propagate import propagate


def frame_id(clip: Clip, index: int) -> int:
    with new_session(clip.env.engine) as s:
        statement = select(Image.id).where(Image.video_id == clip.video_id, Image.frame_index == index)
        return s.exec(statement).one() or 0


def test_a_new_shape_starts_a_new_track_in_one_undo_step_and_propagates(squares_clip: Clip) -> None:
    clip = squares_clip
    env, pid, ann = clip.env, clip.project_id, who(clip, "annotator")
    before = ops_tracks.list_tracks(env, ann, pid)
    item = NewAnnotation(label="person", bbox=true_box(2, 10), new_track=True, tool="ui")
    with pytest.raises(Forbidden):
        annotations.create(env, who(clip, "viewer"), pid, image_id=frame_id(clip, 10), items=[item])
    (made,) = annotations.create(env, ann, pid, image_id=frame_id(clip, 10), items=[item])
    assert made.track_id not in (None, clip.a, clip.b, clip.c)
    track = ops_tracks.get_track(env, ann, pid, made.track_id)
    seen = (track.video_id, track.label, track.annotations, track.first_frame)
    assert seen == (clip.video_id, "person", 1, 10)

    undone = history.step(env, ann, pid, "undo")
    assert undone is not None and undone.annotation_ids == [made.id]  # annotation and new track: one step
    assert ops_tracks.list_tracks(env, ann, pid) == before
    history.step(env, ann, pid, "redo")

    # Propagate follows the new track from its one annotation through the later frames.
    done = propagate(env, ann, pid, made.track_id, 10, Backends(SquareDetector(), FakeSegmenter()))
    assert (done.created, done.to_frame) == (9, 19)
    frames = ops_tracks.track_frames(env, ann, pid, made.track_id)
    assert [f.frame_index for f in frames] == list(range(10, 20))


def test_a_new_shape_joins_an_existing_track_on_a_frame_it_is_not_on(squares_clip: Clip) -> None:
    clip = squares_clip
    env, pid, ann = clip.env, clip.project_id, who(clip, "annotator")
    item = NewAnnotation(label="person", bbox=true_box(2, 12), track_id=clip.b)  # B ends at frame 9
    (made,) = annotations.create(env, ann, pid, image_id=frame_id(clip, 12), items=[item])
    assert made.track_id == clip.b
    assert ops_tracks.get_track(env, ann, pid, clip.b).last_frame == 12


@pytest.mark.parametrize(
    ("where", "track", "refusal"),
    [
        ("frame 3", "a", r"track {a} already has annotation \d+ on frame 3 .*one annotation per frame"),
        ("photo", "a", r"track {a} is a track of video {video}, and image \d+ is a photo, in no video"),
        ("photo", "new", r"is a photo, not a video frame: only frames go on tracks"),
        ("frame 3", 9999, r"track 9999 is not a track of project"),
        ("frame 3", "both", r"give track_id or new_track, not both"),
    ],
)
def test_a_shape_on_a_track_is_refused_clearly_and_writes_nothing(
    squares_clip: Clip, ops_world, where: str, track: object, refusal: str
) -> None:
    world, _ = ops_world
    clip = squares_clip
    env, pid, ann = clip.env, clip.project_id, who(clip, "annotator")
    image = frame_id(clip, 3) if where == "frame 3" else world.images["bus.jpg"]
    fields = {
        "a": {"track_id": clip.a},
        "new": {"new_track": True},
        "both": {"track_id": clip.a, "new_track": True},
    }.get(track, {"track_id": track})  # type: ignore[call-overload]
    before = ops_tracks.list_tracks(env, ann, pid), annotations.count(env, ann, pid, images=[image])
    new = NewAnnotation(label="person", bbox=[1, 1, 20, 20], **fields)
    with pytest.raises(Invalid, match=refusal.format(a=clip.a, video=clip.video_id)):
        annotations.create(env, ann, pid, image_id=image, items=[new])
    assert (ops_tracks.list_tracks(env, ann, pid), annotations.count(env, ann, pid, images=[image])) == before


@pytest.mark.parametrize(
    ("value", "fields"),
    [(None, {}), ("new", {"new_track": True}), (" New ", {"new_track": True}), (3, {"track_id": 3}),
     ("3", {"track_id": 3}), ("three", None), (True, None), (-1, None)],
)  # fmt: skip
def test_one_track_value_as_the_ui_and_tools_give_it(value: object, fields: dict | None) -> None:
    if fields is None:
        with pytest.raises(Invalid, match="track must be a track id or 'new'"):
            annotations.on_track(value)  # type: ignore[arg-type]
    else:
        assert annotations.on_track(value) == fields  # type: ignore[arg-type]
