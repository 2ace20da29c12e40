"""Videos, frames and tracks over HTTP, on SQLite and PostgreSQL: list, rename, merge, split,
delete and propagate (a job: queued, run, cancelled, resumed), each one undo step; errors in the
API's one shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ops.unit import Env
from server.jobs import JobRunner, ProgressEvent
from store.db import open_engine
from store.models import Job, JobState
from tests.ops.video_clip import add_squares, true_box
from tests.server.agent_fakes import Chatty, use_model
from tests.server.conftest import World, make_app
from tests.tools.conftest import FakeSegmenter
from tests.tools.test_video_label import SquareDetector
from tools.propagate_job import KIND, PropagateJob


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


def run_propagation(world: World, backends, job_id: int, handler: PropagateJob | None = None) -> Job:
    """Run the queued job in this thread, as the server's runner would (by default with a fresh
    handler: another process, so nothing of an earlier run is in memory)."""
    engine = open_engine(world.database or world.home / "labelwright.db")
    try:
        handler = handler or PropagateJob(home=world.home, backends_factory=lambda: backends)
        return JobRunner(engine, {KIND: handler}).run_job(job_id)
    finally:
        engine.dispose()


def track_rows(api: TestClient, world: World, track_id: int) -> list[tuple[int, int, list[float]]]:
    frames = api.get(P(world, f"/tracks/{track_id}"), headers=world.auth("viewer")).json()["frames"]
    return [(f["frame_index"], f["annotation_id"], f["bbox"]) for f in frames]


def start(api: TestClient, world: World, track_id: int, body: dict[str, Any]) -> int:
    queued = api.post(P(world, f"/tracks/{track_id}/propagate"), json=body, headers=world.auth("annotator"))
    assert queued.status_code == 202, queued.text
    return queued.json()["id"]


def test_propagate_over_http_is_a_job(setup) -> None:
    world, clip, api, backends = setup
    auth = world.auth("annotator")
    refused = api.post(
        P(world, f"/tracks/{clip.a}/propagate"), json={"from_frame": 5}, headers=world.auth("viewer")
    )
    assert refused.status_code == 403 and backends.detector.calls == 0
    bad = api.post(P(world, f"/tracks/{clip.a}/propagate"), json={"from_frame": 50}, headers=auth)
    assert bad.status_code == 422 and "no annotation on frame 50" in bad.json()["detail"]
    last = api.post(P(world, f"/tracks/{clip.a}/propagate"), json={"from_frame": 19}, headers=auth)
    assert last.status_code == 422 and "nothing follows it" in last.json()["detail"]
    before = track_rows(api, world, clip.a)
    queued = api.post(
        P(world, f"/tracks/{clip.a}/propagate"), json={"from_frame": 5, "to_frame": 9}, headers=auth
    )
    assert queued.status_code == 202, queued.text
    job = queued.json()
    assert (job["kind"], job["state"], job["total"], job["params"]["requested_by"]) == (
        "propagate_track", "queued", 4, "annotator"
    )  # fmt: skip
    assert "frame_ids" not in job["params"] and backends.detector.calls == 0
    assert track_rows(api, world, clip.a) == before  # queued: nothing changed yet

    assert run_propagation(world, backends, job["id"]).state == JobState.done
    assert backends.detector.calls == 4
    done = api.get(P(world, f"/jobs/{job['id']}"), headers=auth).json()
    assert (done["state"], done["done"], done["total"]) == ("done", 4, 4)
    result = done["params"]["result"]
    assert (result["from_frame"], result["to_frame"], result["created"], result["deleted"]) == (5, 9, 4, 4)
    assert result["model"] == "square-detector+iou-follow+fake-segmenter"
    after = track_rows(api, world, clip.a)
    assert [r[1] for r in after[6:10]] != [r[1] for r in before[6:10]] and after[10:] == before[10:]
    undone = api.post(P(world, "/history/undo"), headers=auth).json()["undo"]
    assert undone["affected"] == 8 and undone["description"].startswith(f"propagate track {clip.a}")
    assert track_rows(api, world, clip.a) == before  # the whole propagation in one undo step


def test_a_cancelled_propagation_changes_nothing_and_resumes(setup) -> None:
    world, clip, api, backends = setup
    auth = world.auth("annotator")
    before = track_rows(api, world, clip.a)
    job_id = start(api, world, clip.a, {"from_frame": 5})

    def cancel_at_two(event: ProgressEvent) -> None:
        if event.state == "running" and event.done == 2:
            assert api.post(P(world, f"/jobs/{job_id}/cancel"), headers=auth).status_code == 200

    engine = open_engine(world.database or world.home / "labelwright.db")
    runner = JobRunner(engine, {KIND: PropagateJob(home=world.home, backends_factory=lambda: backends)})
    runner.subscribe(cancel_at_two)
    cancelled = runner.run_job(job_id)
    engine.dispose()
    assert (cancelled.state, cancelled.cursor, cancelled.total) == (JobState.cancelled, 2, 14)
    assert backends.detector.calls == 2 and track_rows(api, world, clip.a) == before
    listed = api.get(P(world, "/jobs"), params={"state": "cancelled"}, headers=auth).json()
    assert [j["id"] for j in listed] == [job_id]

    assert api.post(P(world, f"/jobs/{job_id}/resume"), headers=auth).json()["state"] == "queued"
    handler = PropagateJob(home=world.home, backends_factory=lambda: backends)  # another process
    resumed = run_propagation(world, backends, job_id, handler)
    assert handler.stats == {"replayed": 2, "frames": 12}  # frames 6 and 7 again, then 8-19
    assert resumed.state == JobState.done and backends.detector.calls == 2 + 2 + 12
    result = resumed.params["result"]
    assert (result["to_frame"], result["created"], result["deleted"]) == (19, 14, 14)
    for frame_index, _, (x, y, w, h) in track_rows(api, world, clip.a)[6:]:
        tx, ty, _, _ = true_box(1, frame_index)
        assert abs(x - tx) <= 3 and abs(y - ty) <= 3 and 36 <= w <= 44, (frame_index, (x, y, w, h))


def test_a_seed_edited_while_queued_fails_the_job_writing_nothing(setup) -> None:
    world, clip, api, backends = setup
    auth = world.auth("annotator")
    job_id = start(api, world, clip.a, {"from_frame": 5})
    seed = next(r for r in track_rows(api, world, clip.a) if r[0] == 5)
    version = api.get(P(world, f"/annotations/{seed[1]}"), headers=auth).json()["version"]
    moved = api.patch(
        P(world, f"/annotations/{seed[1]}"), json={"bbox": [42, 20, 40, 40], "version": version}, headers=auth
    )
    assert moved.status_code == 200, moved.text
    before = track_rows(api, world, clip.a)
    failed = run_propagation(world, backends, job_id)
    assert failed.state == JobState.failed and "changed while propagating" in failed.error
    assert backends.detector.calls == 0 and track_rows(api, world, clip.a) == before


def test_openapi_declares_the_routes(setup) -> None:
    world, _, api, _ = setup
    paths = api.get("/openapi.json").json()["paths"]
    route = paths["/api/v1/projects/{project_id}/tracks/{track_id}/propagate"]["post"]
    assert {"202", "403", "404", "409", "422"} <= set(route["responses"])
    assert route["responses"]["202"]["content"]["application/json"]["example"]["kind"] == "propagate_track"
    assert "/api/v1/projects/{project_id}/videos/{video_id}/frames" in paths


def test_a_segmented_object_is_saved_onto_a_track_or_a_new_one(setup) -> None:
    """`POST .../segment` with save and `track`: the mask joins one of the frame's video's tracks,
    or starts a new one; a track of no use there is refused and nothing is stored."""
    world, clip, api, _ = setup
    auth = world.auth("annotator")
    frames = api.get(P(world, f"/videos/{clip.video_id}/frames"), params={"offset": 12}, headers=auth).json()
    frame = frames[0]["image_id"]
    url = P(world, f"/images/{frame}/segment")
    box = [int(v) for v in true_box(2, 12)]
    box = [box[0], box[1], box[0] + box[2], box[1] + box[3]]
    # track B is square 2 on frames 0-9; frame 12 is free on it (track C has square 2 there)
    joined = api.post(url, json={"box": box, "save": True, "label": "person", "track": clip.b}, headers=auth)
    assert joined.status_code == 200, joined.text
    assert joined.json()["track_id"] == clip.b and joined.json()["annotation_id"] > 0
    assert [f for f, _, _ in track_rows(api, world, clip.b)][-1] == 12
    fresh = api.post(url, json={"box": box, "save": True, "label": "person", "track": "new"}, headers=auth)
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["track_id"] not in (None, clip.a, clip.b, clip.c)
    tracks = api.get(P(world, "/tracks"), params={"video_id": clip.video_id}, headers=auth).json()
    assert fresh.json()["track_id"] in [t["id"] for t in tracks]
    before = len(track_rows(api, world, clip.c))
    taken = api.post(url, json={"box": box, "save": True, "label": "person", "track": clip.c}, headers=auth)
    assert taken.status_code == 422 and "already" in taken.json()["detail"]  # one box per frame a track
    unsaved = api.post(url, json={"box": box, "track": clip.c}, headers=auth)
    assert unsaved.status_code == 422 and "needs save=true" in unsaved.text
    assert len(track_rows(api, world, clip.c)) == before
