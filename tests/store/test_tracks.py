"""Tracks on a real ingested clip: rename, merge, split, delete; each one change batch that undo reverts."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from store.annotations import create_annotation, update_annotation
from store.categories import ensure_categories
from store.history import begin_change, redo, undo
from store.ingest import ingest
from store.models import Annotation, Image, Project
from store.tracks import (
    create_track,
    delete_track,
    list_tracks,
    merge_tracks,
    rename_track,
    split_track,
    track_frames,
)


@pytest.fixture
def clip(session: Session, tmp_path: Path, clips) -> dict:
    """tree.avi at 1 fps (30 frames) with two tracks: A on frames 0-9, B on frames 10-19."""
    report = ingest(session, home=tmp_path / "home", project_name="p", source=clips["tree.avi"], sample_fps=1)
    project = session.exec(select(Project)).one()
    person, car = ensure_categories(session, project_id=project.id, names=["person", "car"])
    video_id = report.videos[0].video_id
    frames = list(
        session.exec(select(Image).where(Image.video_id == video_id).order_by(col(Image.frame_index)))
    )
    batch = begin_change(session, project_id=project.id, actor="t", description="tracks")
    a = create_track(session, batch=batch, video_id=video_id, category_id=person.id, name="A")
    b = create_track(session, batch=batch, video_id=video_id, category_id=person.id, name="B")
    for i, frame in enumerate(frames[:20]):
        track = a if i < 10 else b
        create_annotation(
            session,
            batch=batch,
            image_id=frame.id,
            category_id=person.id,
            bbox=[10 + i, 10, 40, 80],
            track_id=track.id,
        )
    session.commit()
    return {
        "project": project,
        "a": a.id,
        "b": b.id,
        "person": person.id,
        "car": car.id,
        "frames": [f.frame_index for f in frames],
        "video": video_id,
    }


def _state(session: Session) -> list[tuple[int, int | None, int]]:
    session.expire_all()
    return [
        (a.id, a.track_id, a.category_id)
        for a in session.exec(select(Annotation).order_by(col(Annotation.id)))
    ]


def _change(session: Session, project: Project, fn, **kw):
    batch = begin_change(session, project_id=project.id, actor="t", description=fn.__name__)
    out = fn(session, batch=batch, **kw)
    session.commit()
    return out


def _undo_restores(session: Session, project: Project, before) -> None:
    undo(session, project_id=project.id, actor="t")
    assert _state(session) == before


def test_listing(session: Session, clip: dict) -> None:
    a, b = list_tracks(session, project_id=clip["project"].id)
    frames = clip["frames"]
    assert (a.id, a.name, a.annotations, a.first_frame, a.last_frame) == (
        clip["a"],
        "A",
        10,
        frames[0],
        frames[9],
    )
    assert (b.annotations, b.first_frame, b.category_id) == (10, frames[10], clip["person"])


def test_rename_sets_the_class_of_every_frame_and_undoes(session: Session, clip: dict) -> None:
    before = _state(session)
    assert _change(session, clip["project"], rename_track, track_id=clip["a"], category_id=clip["car"]) == 10
    assert {c for _, t, c in _state(session) if t == clip["a"]} == {clip["car"]}
    assert {c for _, t, c in _state(session) if t == clip["b"]} == {clip["person"]}
    _undo_restores(session, clip["project"], before)
    assert list_tracks(session, project_id=clip["project"].id)[0].category_id == clip["person"]


def test_merge_moves_annotations_and_undo_splits_them_again(session: Session, clip: dict) -> None:
    before = _state(session)
    assert _change(session, clip["project"], merge_tracks, into=clip["a"], others=[clip["b"]]) == 10
    (merged,) = list_tracks(session, project_id=clip["project"].id)
    assert (merged.id, merged.annotations) == (clip["a"], 20)
    _undo_restores(session, clip["project"], before)
    redo(session, project_id=clip["project"].id, actor="t")
    assert len(list_tracks(session, project_id=clip["project"].id)) == 1


def test_split_at_a_frame_makes_a_new_track_from_there(session: Session, clip: dict) -> None:
    before, at = _state(session), clip["frames"][4]
    new = _change(session, clip["project"], split_track, track_id=clip["a"], frame_index=at)
    assert [f for f, _ in track_frames(session, track_id=new.id)] == clip["frames"][4:10]
    assert [f for f, _ in track_frames(session, track_id=clip["a"])] == clip["frames"][:4]
    assert len(list_tracks(session, project_id=clip["project"].id)) == 3
    _undo_restores(session, clip["project"], before)
    assert len(list_tracks(session, project_id=clip["project"].id)) == 2  # the new one is empty again


def test_delete_removes_the_whole_track_and_undo_brings_it_back(session: Session, clip: dict) -> None:
    before = _state(session)
    assert _change(session, clip["project"], delete_track, track_id=clip["b"]) == 10
    assert [t.id for t in list_tracks(session, project_id=clip["project"].id)] == [clip["a"]]
    _undo_restores(session, clip["project"], before)


@pytest.mark.parametrize(
    ("fn", "kw", "message"),
    [
        (merge_tracks, {"into": "a", "others": ["a"]}, "merge needs at least one track other than"),
        (merge_tracks, {"into": "a", "others": [999]}, "track 999 is not a track of project"),
        (
            split_track,
            {"track_id": "a", "frame_index": 0},
            "split frame must leave annotations on both sides",
        ),
        (split_track, {"track_id": "a", "frame_index": 10_000}, "split frame must leave annotations"),
        (rename_track, {"track_id": "a", "category_id": 999}, "category 999 is not a category of project"),
        (delete_track, {"track_id": 999}, "track 999 is not a track of project"),
    ],
)
def test_bad_requests_are_refused_and_write_nothing(session: Session, clip: dict, fn, kw, message) -> None:
    kw = {
        k: ([clip[x] if x == "a" else x for x in v] if isinstance(v, list) else clip[v] if v == "a" else v)
        for k, v in kw.items()
    }
    before = _state(session)
    batch = begin_change(session, project_id=clip["project"].id, actor="t", description="bad")
    with pytest.raises(ValueError, match=message):
        fn(session, batch=batch, **kw)
    session.rollback()
    assert _state(session) == before


def test_merging_tracks_that_share_a_frame_is_refused(session: Session, clip: dict) -> None:
    split = _change(session, clip["project"], split_track, track_id=clip["a"], frame_index=clip["frames"][5])
    frame = session.exec(
        select(Image).where(Image.video_id == clip["video"], Image.frame_index == clip["frames"][1])
    ).one()
    batch = begin_change(session, project_id=clip["project"].id, actor="t", description="overlap")
    create_annotation(
        session,
        batch=batch,
        image_id=frame.id,
        category_id=clip["person"],
        bbox=[1, 1, 5, 5],
        track_id=split.id,
    )
    with pytest.raises(ValueError, match=f"both have frame {clip['frames'][1]}"):
        merge_tracks(session, batch=batch, into=clip["a"], others=[split.id])


def test_an_annotation_cannot_join_a_track_of_another_video(
    session: Session, clip: dict, photos, tmp_path
) -> None:
    ingest(session, home=tmp_path / "home", project_name="p", source=photos["bus.jpg"].parent)
    photo = session.exec(select(Image).where(col(Image.video_id).is_(None))).first()
    batch = begin_change(session, project_id=clip["project"].id, actor="t", description="x")
    with pytest.raises(ValueError, match=f"track {clip['a']} is a track of video .* is a photo, in no video"):
        create_annotation(
            session,
            batch=batch,
            image_id=photo.id,
            category_id=clip["person"],
            bbox=[1, 1, 5, 5],
            track_id=clip["a"],
        )


def test_a_track_holds_one_annotation_per_frame(session: Session, clip: dict) -> None:
    """A second annotation of track A on a frame A is on is refused, created or moved there; an
    update of the annotation already there is not refused by itself."""
    first = clip["frames"][0]
    frame = session.exec(
        select(Image).where(Image.video_id == clip["video"], Image.frame_index == first)
    ).one()
    there = session.exec(
        select(Annotation).where(Annotation.track_id == clip["a"], Annotation.image_id == frame.id)
    ).one()
    batch = begin_change(session, project_id=clip["project"].id, actor="t", description="second")
    refusal = rf"track {clip['a']} already has annotation {there.id} on frame {first} .*one annotation per"
    with pytest.raises(ValueError, match=refusal):
        create_annotation(
            session, batch=batch, image_id=frame.id, category_id=clip["person"], bbox=[1, 1, 5, 5],
            track_id=clip["a"],
        )  # fmt: skip
    loose = create_annotation(
        session, batch=batch, image_id=frame.id, category_id=clip["person"], bbox=[1, 1, 5, 5]
    )
    with pytest.raises(ValueError, match=refusal):
        update_annotation(session, batch=batch, annotation_id=loose.id, track_id=clip["a"])
    update_annotation(session, batch=batch, annotation_id=there.id, track_id=clip["a"], bbox=[2, 2, 6, 6])
    moved = update_annotation(session, batch=batch, annotation_id=loose.id, track_id=clip["b"])
    assert moved is not None and moved.track_id == clip["b"]  # B is not on frame 0
    assert [f for f, _ in track_frames(session, track_id=clip["a"])].count(first) == 1
