"""`labelwright import --format coco-video | mot`: the round trip of a labelled vtest.avi through
the CLI's export, ingest, import and undo; refusals exit 1 with the reasons and import nothing."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from server import cli
from server.settings import get_settings
from store.db import new_session
from store.projects import get_project_by_name
from tests.store.video_tracks import FPS, labelled_vtest, partition, tracks_of

RUN = CliRunner()


def _tracks(name: str) -> dict:
    engine = get_settings().open_store()
    try:
        with new_session(engine) as session:
            project = get_project_by_name(session, name=name)
            return {} if project is None else tracks_of(session, project.id)
    finally:
        engine.dispose()


def test_import_coco_video_and_mot_round_trip_and_undo(home: Path, tmp_path: Path, clips) -> None:
    engine = get_settings().open_store()
    with new_session(engine) as session:
        labelled_vtest(session, home, "source", clips["vtest.avi"])
    engine.dispose()
    out = tmp_path / "vtest.json"
    for fmt, target in (("coco-video", out), ("mot", tmp_path / "mot")):
        done = RUN.invoke(cli.app, ["export", "-p", "source", "--format", fmt, "--out", str(target)])
        assert done.exit_code == 0, done.output
    for project in ("fresh", "boxes"):
        ingested = RUN.invoke(cli.app, ["ingest", str(clips["vtest.avi"]), "-p", project, "--fps", str(FPS)])
        assert ingested.exit_code == 0, ingested.output

    imported = RUN.invoke(cli.app, ["import", str(out), "-p", "fresh", "--format", "coco-video", "--json"])
    assert imported.exit_code == 0, imported.output
    report = json.loads(imported.stdout)
    assert (report["format"], report["imported"], len(report["tracks"])) == ("coco-video", 14, 3)
    assert _tracks("fresh") == _tracks("source")
    human = RUN.invoke(cli.app, ["undo", "-p", "fresh"])
    assert human.exit_code == 0 and _tracks("fresh") == {}

    mot = tmp_path / "mot" / "vtest.txt"
    refused = RUN.invoke(cli.app, ["import", str(mot), "-p", "boxes", "--format", "mot", "--map", "1=person"])
    said = " ".join(refused.output.split())
    assert (
        refused.exit_code == 1 and "1 problem(s), nothing imported: 13 line(s) have no class number" in said
    )
    bad_map = RUN.invoke(cli.app, ["import", str(mot), "-p", "boxes", "--format", "mot", "--map", "person"])
    assert bad_map.exit_code == 1 and "NUMBER=NAME" in bad_map.output
    assert _tracks("boxes") == {}
    plain = RUN.invoke(cli.app, ["import", str(mot), "-p", "boxes", "--format", "mot", "--class", "walker"])
    assert plain.exit_code == 0, plain.output
    assert "tracks (file id -> track id):" in plain.output and "imported: 13" in plain.output
    got = partition(_tracks("boxes"))
    assert sorted([f for f, *_ in rows] for rows in got) == sorted(
        [f for f, *_ in rows] for rows in partition(_tracks("source"))
    )
    assert {label for rows in got for _, label, *_ in rows} == {"walker"}


def test_import_plain_coco_still_brings_its_images(home: Path, tmp_path: Path, photos) -> None:
    folder = photos["bus.jpg"].parent
    coco = {
        "images": [{"id": 1, "file_name": "bus.jpg", "width": 810, "height": 1080}],
        "categories": [{"id": 3, "name": "bus"}],
        "annotations": [{"id": 9, "image_id": 1, "category_id": 3, "bbox": [20, 230, 780, 500]}],
    }
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(coco))
    done = RUN.invoke(cli.app, ["import", str(path), "-p", "photos", "--images", str(folder), "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert (report["images_ingested"], report["imported"], report["problems"]) == (1, 1, [])
    mot_only = RUN.invoke(cli.app, ["import", str(path), "-p", "photos", "--class", "bus"])
    assert (
        mot_only.exit_code == 1
        and "video, class name and class map are for MOT files, not coco" in mot_only.output
    )
