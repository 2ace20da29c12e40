"""MOTChallenge text in: the round trip on a real clip (and the file read by standard readers),
the ground-truth layout with class numbers, and refusals that import nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlmodel import Session, func, select

from store.ingest import ingest
from store.models import Annotation, Track
from store.mot_export import export_mot
from store.mot_import import import_mot, parse_mot
from store.tracks import list_tracks
from tests.store.video_clips import moving_squares
from tests.store.video_tracks import ingest_vtest, labelled_vtest, partition, tracks_of


def test_round_trip_on_vtest_keeps_tracks_boxes_and_frames(session: Session, tmp_path: Path, clips) -> None:
    home = tmp_path / "home"
    source, _ = labelled_vtest(session, home, "source", clips["vtest.avi"])
    export_mot(session, project_id=source, out_dir=tmp_path / "mot")
    path = tmp_path / "mot" / "vtest.txt"
    table = np.loadtxt(path, delimiter=",", ndmin=2)  # the standard reader sees the same file
    assert table.shape == (13, 10) and sorted(set(table[:, 0])) == [1, 11, 21, 31, 41, 51, 61]
    pandas = pytest.importorskip("pandas")
    frame = pandas.read_csv(path, header=None)
    assert frame.shape == (13, 10) and frame[1].nunique() == 3
    fresh, video = ingest_vtest(session, home, "fresh", clips["vtest.avi"])

    report = import_mot(session, project_id=fresh, mot_path=path, class_name="person")

    want = sorted(  # MOT keeps frames, boxes, ids and scores; no class names ("person" given), no masks
        [(f, "person", box, None, score) for f, _, box, _, score in rows]
        for rows in partition(tracks_of(session, source))
    )
    assert partition(tracks_of(session, fresh)) == want
    assert (report.imported, report.tracked, report.frames, report.box_only) == (13, 13, 7, 13)
    assert report.videos == {"vtest.avi": video} and len(report.tracks) == 3
    source_ids = sorted(t.id for t in list_tracks(session, project_id=source))
    assert sorted(int(k) for k in report.tracks) == source_ids  # the file's ids: the exporter's track ids
    assert {t.name for t in list_tracks(session, project_id=fresh)} == {str(i) for i in source_ids}


GT = """\
1,1,-5,20,40,40,1,1,1.0
2,1,1,20,40,40,1,1,0.8
3,1,7,20,40,40,1,1,0.8
1,2,10,150,40,40,0,7,0.5
2,-1,16,150,40,40,1,7,0.5
3,3,50,50,10,10,0,8,0.2
"""


def _squares(session: Session, tmp_path: Path) -> int:
    clip = moving_squares(tmp_path / "sq.mp4")
    return ingest(session, home=tmp_path / "home", project_name="p", source=clip).project_id


def test_ground_truth_layout_maps_classes_clips_boxes_and_skips_ids_of_minus_one(
    session: Session, tmp_path: Path
) -> None:
    project = _squares(session, tmp_path)
    path = tmp_path / "gt.txt"
    path.write_text(GT)

    report = import_mot(
        session,
        project_id=project,
        mot_path=path,
        video="sq.mp4",
        class_map={1: "pedestrian", 7: "static person", 8: None},
    )

    tracks = {t.name: t for t in list_tracks(session, project_id=project)}
    assert sorted(tracks) == ["1", "2"] and (tracks["1"].first_frame, tracks["1"].last_frame) == (0, 2)
    rows = session.exec(select(Annotation).order_by(Annotation.id)).all()
    assert rows[0].bbox == [0.0, 20.0, 35.0, 40.0] and report.clipped == 1  # entering the frame: clipped
    assert [r.track_id is None for r in rows] == [False, False, False, False, True]
    assert {r.score for r in rows} == {None}  # the gt layout's conf is a flag, not a score
    assert report.categories_created == ["pedestrian", "static person"]
    assert (report.imported, report.left_out) == (5, 1)  # class 8 (a distractor) left out, as asked


@pytest.mark.parametrize(
    ("text", "kwargs", "reason"),
    [
        ("21,1,10,20,40,40,1,-1,-1,-1\n", {}, r"line 1: frame index 20 is beyond video 'sq.mp4' \(20 frames"),
        ("1,1,10,20,-40,40,1,-1,-1,-1\n", {}, r"line 1: box size must be positive, got width -40"),
        ("1,1,10,20,40,0\n", {}, r"line 1: box size must be positive"),
        ("0,1,10,20,40,40\n", {}, r"line 1: frame must be a whole number >= 1 \(MOT frames are 1-based\)"),
        ("1,1,10,20\n", {}, r"line 1: expected 6 to 10 comma-separated values"),
        ("1,one,10,20,40,40\n", {}, r"line 1: column 2 must be a number, got 'one'"),
        ("1,1,900,20,40,40\n", {}, r"line 1: bbox .* has no area inside the 320x240 image"),
        ("1,1,10,20,40,40\n", {"video": "street.mp4"},
         r"unknown video 'street.mp4': the project's videos are \['sq.mp4'\]"),
        ("1,1,10,20,40,40,1,1,1\n2,1,16,20,40,40,1,2,1\n", {"class_map": {1: "a", 2: "b"}},
         r"line 2: track id 1 is class 'b' here and 'a' at line 1: a track is one object of one class"),
        ("1,1,10,20,40,40\n1,1,50,20,40,40\n", {}, r"line 2: track id 1 already has frame index 0 at line 1"),
        ("1,1,10,20,40,40,1,1,1\n1,2,10,20,40,40,1,8,1\n", {"class_map": {1: "a"}, "class_name": None},
         r"5 line\(s\) have no class number .*; class 8 \(1 line\(s\)\) is not in the class map \{1: 'a'\}"),
        ("1,1,10,20,40,40\n", {"class_name": None}, r"MOTChallenge files have no class names"),
        ("\n\n", {}, r"holds no MOT lines"),
    ],
)  # fmt: skip
def test_a_refused_file_imports_nothing(
    session: Session, tmp_path: Path, text: str, kwargs: dict, reason: str
) -> None:
    project = _squares(session, tmp_path)
    path = tmp_path / "sq.txt"  # the stem names the video when none is given
    good = "".join(f"{i},9,10,20,40,40\n" for i in range(1, 6))  # good lines do not save a bad file
    path.write_text(text + good if text.strip() else text)
    kwargs = {"class_name": "person", **kwargs}

    with pytest.raises(ValueError, match=reason):
        import_mot(session, project_id=project, mot_path=path, **kwargs)

    session.rollback()
    assert session.exec(select(func.count()).select_from(Annotation)).one() == 0
    assert session.exec(select(func.count()).select_from(Track)).one() == 0


def test_a_refusal_names_every_problem_by_line() -> None:
    lines, problems = parse_mot("1,1,1,1,-1,1\n\n3,1,1,1,1,1\nx\n")
    assert [line.line for line in lines] == [3]
    assert [p.split(":")[0] for p in problems] == ["line 1", "line 4"]
