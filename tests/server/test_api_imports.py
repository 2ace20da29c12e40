"""POST /projects/{id}/imports/{fmt}: a labelled vtest.avi's COCO-video and MOT exports uploaded
into a project holding the same clip, on SQLite and PostgreSQL; refusals in the API's one shape."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from fastapi.testclient import TestClient

from ops import images
from ops.unit import Env
from store.db import new_session, open_engine
from tests.ops.conftest import caller_of
from tests.server.conftest import World, make_app
from tests.store.video_tracks import FPS, labelled_vtest, partition, tracks_of


@pytest.fixture
def held(world: World, clips):
    """The world's project holds vtest.avi; yields the world, a client and the engine."""
    engine = open_engine(world.database or world.home / "labelwright.db")
    images.ingest(Env(engine, world.home), caller_of(engine, "root"), source=clips["vtest.avi"],
                  project_id=world.project_id, sample_fps=FPS)  # fmt: skip
    yield world, TestClient(make_app(world), base_url="http://localhost"), engine
    engine.dispose()


@pytest.fixture
def setup(held, clips):
    """:func:`held`, and project "source" holding the clip labelled (its id last)."""
    world, api, engine = held
    with new_session(engine) as session:
        source, _ = labelled_vtest(session, world.home, "source", clips["vtest.avi"])
    return world, api, engine, source


def _tracked(engine, project_id: int) -> dict:
    with new_session(engine) as session:
        return {k: v for k, v in tracks_of(session, project_id).items() if k is not None}


def _download(api: TestClient, world: World, project_id: int, fmt: str) -> dict[str, bytes]:
    answer = api.get(f"/api/v1/projects/{project_id}/exports/{fmt}", headers=world.auth("root"))
    assert answer.status_code == 200, answer.text
    with zipfile.ZipFile(io.BytesIO(answer.content)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def test_upload_coco_video_then_mot_round_trips(setup) -> None:
    world, api, engine, source = setup
    files = {**_download(api, world, source, "coco-video"), **_download(api, world, source, "mot")}
    url = f"/api/v1/projects/{world.project_id}/imports"

    answer = api.post(
        f"{url}/coco-video",
        files={"file": ("annotations.video.json", files["annotations.video.json"], "application/json")},
        headers=world.auth("reviewer"),
    )

    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert (report["format"], report["imported"], report["tracked"], len(report["tracks"])) == (
        "coco-video", 14, 13, 3,
    )  # fmt: skip
    assert _tracked(engine, world.project_id) == _tracked(engine, source)
    undone = api.post(f"/api/v1/projects/{world.project_id}/history/undo", headers=world.auth("reviewer"))
    assert undone.status_code == 200, undone.text
    assert _tracked(engine, world.project_id) == {}

    mot = api.post(
        f"{url}/mot",
        params={"status": "proposed", "map": ["1=person"], "class": "walker"},
        files={"file": ("vtest.txt", files["vtest.txt"], "text/plain")},  # the stem names the video
        headers=world.auth("annotator"),
    )
    assert mot.status_code == 200, mot.text
    got = partition(_tracked(engine, world.project_id))
    assert sorted([f for f, *_ in rows] for rows in got) == sorted(
        [f for f, *_ in rows] for rows in partition(_tracked(engine, source))
    )
    assert {label for rows in got for _, label, *_ in rows} == {"walker"}


@pytest.mark.parametrize(
    ("fmt", "name", "text", "params", "who", "code", "detail"),
    [
        ("mot", "vtest.txt", "900,1,1,1,5,5\n", {"class": "p", "status": "proposed"}, "annotator", 422,
         "vtest.txt: 1 problem(s), nothing imported: line 1: frame index 899 is beyond video 'vtest.avi'"),
        ("mot", "gt.txt", "1,1,1,1,5,5\n", {"class": "p", "status": "proposed"}, "annotator", 422,
         "unknown video 'gt': the project's videos are ['vtest.avi']"),
        ("mot", "vtest.txt", "1,1,1,1,5,5\n", {"class": "p"}, "annotator", 403,
         "importing annotations as accepted"),
        ("mot", "vtest.txt", "1,1,1,1,5,5\n", {"class": "p"}, "viewer", 403, "annotation.import"),
        ("coco-video", "v.json", json.dumps({"images": [], "annotations": [], "categories": []}), {},
         "reviewer", 422, "a COCO video file needs a list under 'videos'"),
        ("mot", "vtest.txt", "1,1,1,1,5,5\n", {"map": ["x"]}, "reviewer", 422, "NUMBER=NAME"),
    ],
)  # fmt: skip
def test_refusals_import_nothing(held, fmt, name, text, params, who, code, detail) -> None:
    world, api, engine = held
    answer = api.post(
        f"/api/v1/projects/{world.project_id}/imports/{fmt}",
        params=params,
        files={"file": (name, text.encode(), "text/plain")},
        headers=world.auth(who),
    )
    assert answer.status_code == code and detail in answer.json()["detail"], answer.text
    assert _tracked(engine, world.project_id) == {}


def test_unknown_format_and_missing_file(held) -> None:
    world, api, _ = held
    url = f"/api/v1/projects/{world.project_id}/imports"
    wrong = api.post(f"{url}/yolo", files={"file": ("a.txt", b"x")}, headers=world.auth("reviewer"))
    assert wrong.status_code == 422
    empty = api.post(f"{url}/mot", data={"other": "1"}, headers=world.auth("reviewer"))
    assert empty.status_code == 422 and empty.json()["detail"] == "multipart field 'file' holds no file"
