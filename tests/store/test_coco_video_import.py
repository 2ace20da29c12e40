"""COCO with video fields in: the round trip on a real clip, other tools' shape, and refusals that
import nothing."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from store.coco_video_export import export_coco_video
from store.coco_video_import import import_coco_video
from store.history import undo
from store.ingest import ingest
from store.models import Annotation, Track
from store.tracks import list_tracks
from tests.store.video_clips import moving_squares
from tests.store.video_tracks import ingest_vtest, labelled_vtest, tracks_of


def test_round_trip_on_vtest_keeps_tracks_boxes_masks_and_frames(
    session: Session, tmp_path: Path, clips
) -> None:
    home = tmp_path / "home"
    source, _ = labelled_vtest(session, home, "source", clips["vtest.avi"])
    out = tmp_path / "vtest.json"
    export_coco_video(session, project_id=source, out_path=out)
    fresh, video = ingest_vtest(session, home, "fresh", clips["vtest.avi"])

    report = import_coco_video(session, project_id=fresh, coco_path=out, actor="alice")

    assert tracks_of(session, fresh) == tracks_of(session, source)
    assert set(tracks_of(session, fresh)) == {"walker 1", "walker 2", "bag 3", None}
    assert (report.imported, report.tracked, report.frames, report.box_only) == (14, 13, 7, 4)
    assert report.videos == {"vtest.avi": video} and sorted(report.categories_created) == ["bag", "person"]
    stored = {t.id: t for t in list_tracks(session, project_id=fresh)}
    assert sorted(report.tracks.values()) == sorted(stored)  # one new track per file track
    assert {(t.name, t.first_frame, t.last_frame, t.annotations) for t in stored.values()} == {
        ("walker 1", 0, 40, 5), ("walker 2", 20, 60, 5), ("bag 3", 30, 50, 3),
    }  # fmt: skip
    assert all(t.video_id == video for t in stored.values())

    undone = undo(session, project_id=fresh, actor="alice")
    assert undone is not None and undone.reverted_batch_id == report.batch_id
    assert session.exec(select(func.count()).where(Annotation.project_id == fresh)).one() == 0


def test_other_tools_shape_matches_frames_by_video_and_index(session: Session, tmp_path: Path) -> None:
    """TAO-style: frames named by the tool, ``frame_index``, ``instance_id``, the video by stem."""
    home = tmp_path / "home"
    report = ingest(session, home=home, project_name="p", source=moving_squares(tmp_path / "walk.mp4"))
    project = report.project_id
    coco = {
        "videos": [{"id": 7, "name": "walk"}],
        "images": [
            {"id": 100 + i, "file_name": f"walk/{i:05d}.jpg", "width": 320, "height": 240, "video_id": 7,
             "frame_index": i}
            for i in range(3)
        ],
        "categories": [{"id": 1, "name": "square"}],
        "annotations": [
            {"id": i + 1, "image_id": 100 + i, "category_id": 1, "bbox": [10 + 6 * i, 20, 40, 40],
             "instance_id": 5}
            for i in range(3)
        ],
    }  # fmt: skip
    path = tmp_path / "tao.json"
    path.write_text(json.dumps(coco))

    done = import_coco_video(session, project_id=project, coco_path=path)

    (track,) = list_tracks(session, project_id=project)
    assert (track.name, track.first_frame, track.last_frame, track.annotations) == ("5", 0, 2, 3)
    assert done.tracks == {"5": track.id} and done.box_only == 3


def _squares_file(tmp_path: Path) -> dict:
    return {
        "videos": [{"id": 1, "name": "sq.mp4"}],
        "images": [
            {"id": i, "file_name": f"sq.mp4/frame_{i:06d}.jpg", "width": 320, "height": 240, "video_id": 1,
             "frame_id": i}
            for i in range(4)
        ],
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "car"}],
        "annotations": [
            {"id": 10 + i, "image_id": i, "category_id": 1, "bbox": [10, 20, 40, 40], "track_id": 1}
            for i in range(4)
        ],
    }  # fmt: skip


def _break(coco: dict, how: str) -> None:
    if how == "unknown video":
        coco["videos"][0]["name"] = "street.mp4"
    elif how == "frame beyond":
        coco["images"][3]["frame_id"] = 20
    elif how == "track on two classes":
        coco["annotations"][2]["category_id"] = 2
    elif how == "track twice on a frame":
        coco["annotations"].append({**coco["annotations"][0], "id": 99})
    elif how == "negative size":
        coco["annotations"][1]["bbox"] = [10, 20, -40, 40]
    elif how == "no videos":
        del coco["videos"]
    elif how == "bad track id":
        coco["annotations"][0]["track_id"] = [1]


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("unknown video", r"unknown video 'street.mp4': the project's videos are \['sq.mp4'\]"),
        ("frame beyond", r"frame index 20 is beyond video 'sq.mp4' \(20 frames: indexes 0..19\)"),
        (
            "track on two classes",
            r"annotation 12: track id 1 is class 'car' here and 'person' at annotation 10",
        ),
        ("track twice on a frame", r"annotation 99: track id 1 already has frame index 0 at annotation 10"),
        ("negative size", r"annotation 11: degenerate bbox"),
        ("no videos", r"needs a list under 'videos'"),
        ("bad track id", r"annotation 10: malformed track_id \[1\]"),
    ],
)
def test_a_refused_file_imports_nothing(session: Session, tmp_path: Path, how: str, reason: str) -> None:
    home = tmp_path / "home"
    project = ingest(
        session, home=home, project_name="p", source=moving_squares(tmp_path / "sq.mp4")
    ).project_id
    coco = copy.deepcopy(_squares_file(tmp_path))
    _break(coco, how)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(coco))

    with pytest.raises(ValueError, match=reason):
        import_coco_video(session, project_id=project, coco_path=path)

    session.rollback()
    assert session.exec(select(func.count()).select_from(Annotation)).one() == 0
    assert session.exec(select(func.count()).select_from(Track)).one() == 0


def test_dry_run_reports_and_writes_nothing(session: Session, tmp_path: Path) -> None:
    project = ingest(
        session, home=tmp_path / "home", project_name="p", source=moving_squares(tmp_path / "sq.mp4")
    ).project_id
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(_squares_file(tmp_path)))
    report = import_coco_video(session, project_id=project, coco_path=path, dry_run=True)
    assert (report.imported, report.tracked, report.batch_id) == (4, 4, None)
    assert session.exec(select(func.count()).select_from(Annotation)).one() == 0
