"""Videos, frames and tracks over HTTP, on SQLite and PostgreSQL: list, rename, merge, split,
delete and propagate, each one undo step; errors in the API's one shape."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ops.unit import Env
from store.db import open_engine
from tests.ops.video_clip import add_squares
from tests.server.agent_fakes import Chatty, use_model
from tests.server.conftest import World, make_app
from tests.tools.conftest import FakeSegmenter
from tests.tools.test_video_label import SquareDetector


@pytest.fixture
def setup(world: World, tmp_path: Path):
    engine = open_engine(world.database or world.home / "labelwright.db")
    clip = add_squares(Env(engine, world.home), tmp_path)
    app = make_app(world)
    backends = use_model(app, Chatty())
    backends.detector, backends.segmenter = SquareDetector(), FakeSegmenter()
    yield world, clip, TestClient(app, base_url="http://localhost"), backends
    engine.dispose()


def P(world: World, tail: str) -> str:
    return f"/api/v1/projects/{world.project_id}{tail}"


def test_videos_frames_and_tracks_listed(setup) -> None:
    world, clip, api, _ = setup
    videos = api.get(P(world, "/videos"), headers=world.auth("viewer")).json()
    assert [(v["id"], v["frames"], v["tracks"]) for v in videos] == [(clip.video_id, 20, 3)]
    frames = api.get(
        P(world, f"/videos/{clip.video_id}/frames"), params={"offset": 18}, headers=world.auth("viewer")
    ).json()
    assert [(f["frame_index"], f["annotations"]) for f in frames] == [(18, 2), (19, 2)]
    tracks = api.get(P(world, "/tracks"), params={"video_id": clip.video_id}, headers=world.auth("viewer"))
    assert [t["id"] for t in tracks.json()] == [clip.a, clip.b, clip.c]
    one = api.get(P(world, f"/tracks/{clip.c}"), headers=world.auth("viewer")).json()
    assert [f["frame_index"] for f in one["frames"]] == list(range(10, 20))
    missing = api.get(P(world, "/videos/999"), headers=world.auth("viewer"))
    assert missing.status_code == 404 and missing.json() == {"detail": "no video 999 in project 1"}


def test_track_changes_and_undo(setup) -> None:
    world, clip, api, _ = setup
    auth = world.auth("annotator")
    renamed = api.patch(P(world, f"/tracks/{clip.a}"), json={"label": "box"}, headers=auth)
    assert renamed.status_code == 200 and renamed.json()["changed"] == 20
    assert api.get(P(world, f"/tracks/{clip.a}"), headers=auth).json()["label"] == "box"
    both = api.patch(P(world, f"/tracks/{clip.a}"), json={"label": "x", "category_id": 1}, headers=auth)
    assert both.status_code == 422 and "one of them" in both.json()["detail"]
    merged = api.post(P(world, "/tracks/merge"), json={"into": clip.b, "others": [clip.c]}, headers=auth)
    assert merged.json()["changed"] == 10
    clash = api.post(P(world, "/tracks/merge"), json={"into": clip.a, "others": [clip.b]}, headers=auth)
    assert clash.status_code == 422 and "both have frame" in clash.json()["detail"]
    split = api.post(P(world, f"/tracks/{clip.b}/split"), json={"frame_index": 15}, headers=auth).json()
    assert split["changed"] == 5 and split["new_track_id"]
    gone = api.delete(P(world, f"/tracks/{split['new_track_id']}"), headers=auth)
    assert gone.json()["changed"] == 5
    assert api.get(P(world, f"/tracks/{clip.b}"), headers=auth).json()["annotations"] == 15
    for _ in range(3):  # delete, split, merge: one step each
        assert api.post(P(world, "/history/undo"), headers=auth).status_code == 200
    ids = [t["id"] for t in api.get(P(world, "/tracks"), headers=auth).json()]
    assert ids == [clip.a, clip.b, clip.c]
    viewer = api.delete(P(world, f"/tracks/{clip.a}"), headers=world.auth("viewer"))
    assert viewer.status_code == 403 and "annotation.delete" in viewer.json()["detail"]


def test_propagate_over_http(setup) -> None:
    world, clip, api, backends = setup
    auth = world.auth("annotator")
    refused = api.post(
        P(world, f"/tracks/{clip.a}/propagate"), json={"from_frame": 5}, headers=world.auth("viewer")
    )
    assert refused.status_code == 403 and backends.detector.calls == 0
    done = api.post(
        P(world, f"/tracks/{clip.a}/propagate"), json={"from_frame": 5, "to_frame": 9}, headers=auth
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["from_frame"], body["to_frame"], body["created"], body["deleted"]) == (5, 9, 4, 4)
    assert body["model"] == "square-detector+iou-follow+fake-segmenter"
    bad = api.post(P(world, f"/tracks/{clip.a}/propagate"), json={"from_frame": 50}, headers=auth)
    assert bad.status_code == 422 and "no annotation on frame 50" in bad.json()["detail"]
    undone = api.post(P(world, "/history/undo"), headers=auth).json()["undo"]
    assert undone["affected"] == 8 and undone["description"].startswith(f"propagate track {clip.a}")


def test_openapi_declares_the_routes(setup) -> None:
    world, _, api, _ = setup
    paths = api.get("/openapi.json").json()["paths"]
    route = paths["/api/v1/projects/{project_id}/tracks/{track_id}/propagate"]["post"]
    assert {"200", "403", "404", "409", "422"} <= set(route["responses"])
    assert "/api/v1/projects/{project_id}/videos/{video_id}/frames" in paths
