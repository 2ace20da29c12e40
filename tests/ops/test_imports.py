"""Video imports as an operation: the round trip on vtest.avi by the template's users, one undo
step, the policy, and refusals that leave the project as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import func, select

from ops import exports, history, images, imports
from ops.errors import Forbidden, Invalid, NotFound
from store.db import new_session
from store.models import Annotation, Project, Track
from tests.ops.conftest import caller_of
from tests.store.video_tracks import FPS, labelled_vtest, partition, tracks_of


@pytest.fixture
def vtest(ops_world, tmp_path: Path, clips):
    """Exports of a labelled vtest.avi (another project), and the template's "streets" holding the
    same clip: ``(env, streets id, {"coco-video": file, "mot": file}, source tracks)``."""
    world, env = ops_world
    root = caller_of(env.engine, "root", via="cli")
    with new_session(env.engine) as session:
        source, _ = labelled_vtest(session, env.home, "source", clips["vtest.avi"])
        want = tracks_of(session, source)
    files = {
        "coco-video": exports.export(env, root, source, "coco-video", out=tmp_path / "v.json").path,
        "mot": exports.export(env, root, source, "mot", out=tmp_path / "mot").path / "vtest.txt",
    }
    images.ingest(env, root, source=clips["vtest.avi"], project_id=world.project_id, sample_fps=FPS)
    return env, world.project_id, files, want


def _tracked(env, project_id: int) -> dict:
    with new_session(env.engine) as session:
        return {k: v for k, v in tracks_of(session, project_id).items() if k is not None}


def _counts(env) -> tuple[int, int, int]:
    with new_session(env.engine) as session:
        return tuple(
            session.exec(select(func.count()).select_from(t)).one() for t in (Annotation, Track, Project)
        )


def test_round_trips_through_the_operation_and_undo_in_one_step(vtest) -> None:
    env, streets, files, want = vtest
    reviewer = caller_of(env.engine, "reviewer")

    report = imports.import_annotations(
        env, reviewer, project_id=streets, path=files["coco-video"], fmt="coco-video"
    )

    assert _tracked(env, streets) == {k: v for k, v in want.items() if k is not None}
    assert (report.imported, report.tracked, len(report.tracks)) == (14, 13, 3)
    undone = history.step(env, reviewer, streets, "undo")
    assert undone is not None and _tracked(env, streets) == {}

    annotator = caller_of(env.engine, "annotator")
    mot = imports.import_annotations(
        env, annotator, project_name="streets", path=files["mot"], fmt="mot", status="proposed",
        class_name="  person ",
    )  # fmt: skip
    boxes = [[(f, "person", box, None, s) for f, _, box, _, s in rows] for rows in partition(want)]
    assert partition(_tracked(env, streets)) == sorted(boxes) and mot.imported == 13


def test_refusals_leave_the_project_as_it_was(vtest, tmp_path: Path) -> None:
    env, streets, files, _ = vtest
    before = _counts(env)
    annotator, reviewer = caller_of(env.engine, "annotator"), caller_of(env.engine, "reviewer")
    with pytest.raises(Forbidden, match="importing annotations as accepted"):
        imports.import_annotations(env, annotator, project_id=streets, path=files["mot"], fmt="mot",
                                   class_name="person")  # fmt: skip
    with pytest.raises(NotFound, match="no project 'nowhere': a video import goes onto a project"):
        imports.import_annotations(env, reviewer, project_name="nowhere", path=files["coco-video"],
                                   fmt="coco-video")  # fmt: skip
    with pytest.raises(Invalid, match="video, class name and class map are for MOT files, not coco-video"):
        imports.import_annotations(env, reviewer, project_id=streets, path=files["coco-video"],
                                   fmt="coco-video", class_name="person")  # fmt: skip
    with pytest.raises(Invalid, match=r"import format must be one of \['coco', 'coco-video', 'mot'\]"):
        imports.import_annotations(env, reviewer, project_id=streets, path=files["mot"], fmt="yolo")
    bad = tmp_path / "vtest.txt"
    bad.write_text(files["mot"].read_text() + "800,1,10,10,20,20,1,-1,-1,-1\n")
    with pytest.raises(
        Invalid, match=r"vtest.txt: 1 problem\(s\), nothing imported: line 14: frame index 799 "
    ):
        imports.import_annotations(
            env, reviewer, project_id=streets, path=bad, fmt="mot", class_name="person"
        )
    with pytest.raises(
        Invalid, match=r"a class map entry is NUMBER=NAME or NUMBER=- \(e.g. 1=pedestrian\), got 'one'"
    ):
        imports.parse_class_map(["one"])
    assert _counts(env) == before


def test_class_map_keys_from_json_and_the_cli() -> None:
    assert imports.parse_class_map(["1=pedestrian", " 2 = person on vehicle", "8=-"]) == {
        1: "pedestrian", 2: "person on vehicle", 8: None,
    }  # fmt: skip
    assert imports.parse_class_map([]) is None
    with pytest.raises(Invalid, match="got 'x'"):
        imports.parse_class_map(["x=car"])
