"""The UI's video parts as functions over a real store: a clip (the synthetic moving squares, so
the boxes are exact) and two photos; the strip, the scrubber's frames, the track legend, and
Propagate as people of each role."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from ops.caller import Caller, local_caller
from ops.errors import Conflict, Forbidden
from store import new_session, open_engine
from store.annotations import create_annotation
from store.categories import ensure_categories
from store.history import begin_change
from store.ingest import ingest
from store.models import Annotation, Image
from store.tracks import create_track
from store.users import create_user, set_membership
from tests.store.video_clips import moving_squares
from tests.tools.conftest import FakeSegmenter
from tests.tools.test_video_label import SquareDetector
from ui import actions, video_views, views
from ui.render import track_color
from ui.services import UIServices

ADMIN = local_caller(via="ui")


@dataclass
class Backends:
    detector: Any = field(default_factory=SquareDetector)
    segmenter: Any = field(default_factory=FakeSegmenter)


@dataclass
class World:
    services: UIServices
    project_id: int
    frames: list[int]  # image ids of the 20 frames in order
    photo: int
    tracks: tuple[int, int]  # the top square, the bottom square (frames 0-9 each)


@pytest.fixture
def world(tmp_path: Path, models_dir: Path, photos: dict[str, Path]) -> World:
    home = tmp_path / "home"
    engine = open_engine(home / "labelwright.db")
    backends = Backends()
    services = UIServices(engine=engine, home=home, models_dir=models_dir, backends=lambda: backends)
    with new_session(engine) as s:
        report = ingest(s, home=home, project_name="streets", source=moving_squares(tmp_path / "sq.mp4"))
        ingest(s, home=home, project_name="streets", source=photos["bus.jpg"].parent)
        project_id, video_id = report.project_id, report.videos[0].video_id
        in_order = select(Image).where(Image.video_id == video_id).order_by(col(Image.frame_index))
        frames = list(s.exec(in_order))
        photo = s.exec(select(Image.id).where(Image.file_name == "bus.jpg")).one()
        (person,) = ensure_categories(s, project_id=project_id, names=["person"])
        batch = begin_change(s, project_id=project_id, actor="seed", description="tracks")
        ids = tuple(create_track(s, batch=batch, video_id=video_id, category_id=person.id).id for _ in "ab")
        for frame in frames[:10]:
            for track, (x0, y0) in zip(ids, ((10, 20), (10, 150)), strict=True):
                x = x0 + 6 * (frame.frame_index or 0)
                create_annotation(
                    s, batch=batch, image_id=frame.id, category_id=person.id, bbox=[x, y0, 40, 40],
                    score=0.9, track_id=track,
                )  # fmt: skip
        create_annotation(s, batch=batch, image_id=photo, category_id=person.id, bbox=[50, 400, 200, 500])
        s.commit()
    yield World(services, project_id, [f.id or 0 for f in frames], photo, ids)  # type: ignore[arg-type]
    engine.dispose()


def viewer(world: World) -> Caller:
    with new_session(world.services.engine) as s:
        user = create_user(s, username="vic")
        set_membership(s, user_id=user.id or 0, project_id=world.project_id, role="viewer")
        s.commit()
        return Caller("vic", user.id, False, via="ui", credential="session")


def on_frame(world: World, frame: int, track: int) -> Annotation:
    with new_session(world.services.engine) as s:
        return s.exec(
            select(Annotation).where(Annotation.image_id == world.frames[frame], Annotation.track_id == track)
        ).one()


def test_a_video_is_one_item_in_the_strip_beside_the_photo(world: World) -> None:
    with views.reading(world.services, ADMIN, world.project_id) as session:
        items, ids, note = views.image_strip(world.services.home, session, world.project_id)
        assert ids[:2] == [world.frames[0], world.photo] and note == "2 images, 1 video match."
        captions = [caption for _, caption in items]
        assert captions == ["sq.mp4 · video, 20 frames · 20 ann.", "bus.jpg · 1 ann.", "zidane.jpg · 0 ann."]
        _, ids, note = views.image_strip(world.services.home, session, world.project_id, unlabelled=True)
        assert ids == [world.frames[10], ids[1]] and note == "1 image, 1 video match."  # first one without
        _, ids, note = views.image_strip(world.services.home, session, world.project_id, limit=1)
        assert ids == [world.frames[0]] and note.startswith("1 video matches (the first 1 items of 22 ")


def test_the_scrubber_walks_the_frames_in_order_and_not_a_photo(world: World) -> None:
    with views.reading(world.services, ADMIN, world.project_id) as session:
        found = video_views.frames_of(session, world.project_id, world.frames[3])
        assert found is not None and found.ids == world.frames and found.position == 3
        assert found.line == "sq.mp4 · frame 4 of 20 (source frame 3, 0.30 s)"
        assert video_views.frames_of(session, world.project_id, world.photo) is None
        assert video_views.frames_of(session, world.project_id + 1, world.frames[3]) is None  # other project
        top, bottom = world.tracks
        first = on_frame(world, 0, top)
        assert video_views.same_track(session, first.id, world.frames[5]) == on_frame(world, 5, top).id
        assert video_views.same_track(session, first.id, world.frames[15]) is None  # the track ended
        photo_ann = session.exec(select(Annotation.id).where(Annotation.image_id == world.photo)).one()
        assert video_views.same_track(session, photo_ann, world.frames[5]) is None


def test_tracks_keep_their_colour_and_id_from_frame_to_frame(world: World) -> None:
    top, bottom = world.tracks
    with views.reading(world.services, ADMIN, world.project_id) as session:
        legends = [views.canvas(world.services.home, session, world.frames[i]) for i in (2, 7)]
        listed = views.annotation_choices(session, world.frames[2])
        photo = views.canvas(world.services.home, session, world.photo)
    for html in legends:
        for track in (top, bottom):
            color = ",".join(map(str, track_color(track)))
            assert f"data-track='{track}'" in html and f"data-color='{color}'" in html
    assert track_color(top) != track_color(bottom)
    assert [label.split(" · ")[-1] for label, _ in listed] == [f"track {top}", f"track {bottom}"]
    assert "lw-track" not in photo  # a photo has no track legend


def test_propagate_from_a_corrected_box_replaces_the_later_frames(world: World) -> None:
    services, project = world.services, world.project_id
    top, _ = world.tracks
    fixed = on_frame(world, 2, top)
    later = {on_frame(world, i, top).id for i in range(3, 10)}
    actions.draw_shape(services, ADMIN, project, world.frames[2], "person", annotation_id=fixed.id,
                       version=fixed.version, box=[20, 18, 66, 62])  # fmt: skip
    message = actions.propagate(services, ADMIN, project, fixed.id or 0, fixed.version + 1)
    assert message.startswith(f"propagated track {top} from frame 2 to ")
    with new_session(services.engine) as s:
        rows = list(s.exec(select(Annotation).where(Annotation.track_id == top)))
    now = {a.id: a for a in rows if world.frames.index(a.image_id) > 2}
    assert not later & set(now) and {a.tool for a in now.values()} == {"propagate"}
    assert len(now) >= 7  # frames 3-9 and on, where the square goes on moving
    assert actions.undo_last(services, ADMIN, project).startswith("undone: propagate track")


def test_propagate_is_refused_off_a_track_on_a_stale_version_and_to_a_viewer(world: World) -> None:
    services, project = world.services, world.project_id
    top, _ = world.tracks
    seed = on_frame(world, 2, top)
    with new_session(services.engine) as s:
        photo_ann = s.exec(select(Annotation.id).where(Annotation.image_id == world.photo)).one()
        before = len(list(s.exec(select(Annotation.id))))
    with pytest.raises(ValueError, match="is not on a track"):
        actions.propagate(services, ADMIN, project, photo_ann or 0, 1)
    with pytest.raises(Conflict, match="changed since this page drew it"):
        actions.propagate(services, ADMIN, project, seed.id or 0, seed.version + 1)
    with pytest.raises(Forbidden, match="vic"):
        actions.propagate(services, viewer(world), project, seed.id or 0, seed.version)
    with new_session(services.engine) as s:
        assert len(list(s.exec(select(Annotation.id)))) == before
        assert s.get(Annotation, seed.id).version == seed.version  # type: ignore[union-attr]


def test_the_label_tab_has_the_scrubber_and_propagate(world: World) -> None:
    from ui.app import build_ui

    ids = {c.get("props", {}).get("elem_id") for c in build_ui(world.services).config["components"]}
    assert {"lw-frame", "lw-frame-prev", "lw-frame-next", "lw-frame-line", "lw-propagate"} <= ids


def test_the_strip_filter_picks_the_frames_the_scrubber_steps_through(world: World) -> None:
    f = world.frames
    with views.reading(world.services, ADMIN, world.project_id) as session:
        video_id = session.get_one(Image, f[0]).video_id or 0

        def frames(**boxes: Any) -> set[int] | None:
            where = views.strip_filter(session, world.project_id, **boxes)
            if where is None:
                return None
            return video_views.matching_frames(session, world.project_id, video_id, where)

        assert views.strip_filter(session, world.project_id) == {}  # no box set: no filter
        assert frames(class_name="nope") is None  # no such class: nothing matches (as in the strip)
        person, todo = frames(class_name="person"), frames(unlabelled=True)
        assert person == set(f[:10]) and todo == set(f[10:])  # the photos are not frames of it
        assert frames(class_name="person", status="accepted") == set()
    assert video_views.step(f, f[2], 1, todo) == f[10]  # skips the frames the filter leaves out
    assert video_views.step(f, f[15], -1, person) == f[9]
    assert video_views.step(f, f[9], 1, person) is None and video_views.step(f, f[10], -1, todo) is None
    assert video_views.step(f, f[19], 1, None) == f[19] and video_views.step(f, f[0], -1, None) == f[0]
    assert video_views.step(f, world.photo, 1, person) == f[0]  # from outside the video: its first match
    note = video_views.filter_note(f, f[12], person)
    steps = "◀/▶ step through them"
    assert note == f" · **filter: 10 of 20 frames match** (frames 1–10; {steps}) · this frame does not match"
    assert video_views.filter_note(f, f[3], {f[0], f[3], f[4]}).endswith(f"(frames 1, 4–5; {steps})")
    assert video_views.filter_note(f, f[3], set()) == " · **filter: no frame of this video matches**"
    assert video_views.filter_note(f, f[3], None) == ""


def test_a_new_shape_on_a_frame_starts_or_joins_a_track(world: World) -> None:
    from ops import tracks as ops_tracks

    services, project, f = world.services, world.project_id, world.frames
    top, bottom = world.tracks
    with views.reading(services, ADMIN, project) as session:
        video_id = session.get_one(Image, f[0]).video_id
        on_frame = video_views.tracks_on(session, f[3])
    tracks = ops_tracks.list_tracks(services.env, ADMIN, project, video_id=video_id)
    choices, value = video_views.track_choices(tracks, on_frame, None)
    assert value == "new" and choices[0] == ("New track", "new")
    assert choices[1] == (f"track {top} · person · 10 frames · on this frame", str(top))
    assert video_views.track_choices(tracks, set(), str(bottom)) == (
        [choices[0], *[(label.removesuffix(" · on this frame"), v) for label, v in choices[1:]]],
        str(bottom),
    )
    assert video_views.track_choices(tracks, set(), "999")[1] == "new"  # a track gone: back to a new one

    made, message = actions.draw_shape(
        services, ADMIN, project, f[12], "cone", annotation_id=None, version=None, box=[150, 60, 190, 100],
        track="new",
    )  # fmt: skip
    with new_session(services.engine) as s:
        new_track = s.get_one(Annotation, made).track_id
    assert new_track not in (None, top, bottom) and message == f"added #{made} cone on new track {new_track}"
    joined, message = actions.draw_shape(
        services, ADMIN, project, f[12], "cone", annotation_id=None, version=None, box=[150, 60, 190, 100],
        track=str(top),
    )  # fmt: skip
    assert message == f"added #{joined} cone on track {top}"  # the top track ends at frame 9
    with pytest.raises(actions.ERRORS, match="one annotation per frame"):
        actions.draw_shape(
            services, ADMIN, project, f[12], "cone", annotation_id=None, version=None, box=[1, 1, 9, 9],
            track=str(top),
        )  # fmt: skip
    on_photo, message = actions.draw_shape(
        services, ADMIN, project, world.photo, "cone", annotation_id=None, version=None, box=[1, 1, 9, 9],
        track="new",
    )  # fmt: skip
    assert message == f"added #{on_photo} cone"  # no track control on a photo: no track
    segmented, message = actions.segment_gesture(
        services, ADMIN, project, f[13], "cone", {"kind": "box", "box": [150, 60, 190, 100]}, str(new_track)
    )
    assert message.endswith(f"on track {new_track}")
    frames = ops_tracks.track_frames(services.env, ADMIN, project, new_track or 0)
    assert [x.annotation_id for x in frames] == [made, segmented]
    assert actions.undo_last(services, ADMIN, project).startswith("undone: segment cone")
