"""Annotations over HTTP: create, optimistic-concurrency updates (409 with the current version),
role limits on status changes, bulk review/delete/relabel, undo/redo, categories, findings."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.server.conftest import World, make_app


@pytest.fixture
def api(world: World) -> TestClient:
    return TestClient(make_app(world), base_url="http://localhost")


def url(world: World, tail: str = "") -> str:
    return f"/api/v1/projects/{world.project_id}/annotations{tail}"


def create(api: TestClient, world: World, who: str = "annotator", **fields) -> dict:
    body = {
        "image_id": world.images["zidane.jpg"],
        "category_id": world.categories["person"],
        "bbox": [10, 20, 100, 200],
    }
    response = api.post(url(world), json={**body, **fields}, headers=world.auth(who))
    assert response.status_code == 201, response.text
    return response.json()


def test_create_then_list_and_get(api: TestClient, world: World) -> None:
    made = create(api, world, score=0.7)
    assert (made["status"], made["version"], made["author"], made["tool"]) == (
        "proposed",
        1,
        "annotator",
        "manual",
    )
    assert made["area"] == 100 * 200
    listed = api.get(
        url(world), params={"image_id": world.images["zidane.jpg"]}, headers=world.auth("viewer")
    ).json()
    assert [a["id"] for a in listed] == [made["id"]]
    got = api.get(url(world, f"/{made['id']}"), headers=world.auth("viewer"))
    assert got.json()["bbox"] == [10, 20, 100, 200] and got.headers["etag"] == '"1"'
    bad = api.post(
        url(world),
        json={
            "image_id": world.images["zidane.jpg"],
            "category_id": world.categories["person"],
            "bbox": [0, 0, 5000, 5],
        },
        headers=world.auth("annotator"),
    )
    assert bad.status_code == 422 and "inside" in bad.json()["detail"]


def test_stale_update_gets_409_with_the_current_version(api: TestClient, world: World) -> None:
    made = create(api, world)
    target = url(world, f"/{made['id']}")
    first = api.patch(target, json={"version": 1, "bbox": [0, 0, 50, 50]}, headers=world.auth("annotator"))
    assert first.status_code == 200 and first.json()["version"] == 2 and first.headers["etag"] == '"2"'
    stale = api.patch(target, json={"version": 1, "bbox": [5, 5, 50, 50]}, headers=world.auth("reviewer"))
    assert stale.status_code == 409
    body = stale.json()
    assert body["current_version"] == 2 and body["changed_by"] == "annotator" and "reload" in body["detail"]
    assert api.get(target, headers=world.auth("viewer")).json()["bbox"] == [0, 0, 50, 50]  # nothing written
    via_header = api.patch(
        target, json={"score": 0.5}, headers={**world.auth("annotator"), "If-Match": '"2"'}
    )
    assert via_header.status_code == 200 and via_header.json()["version"] == 3
    missing = api.patch(target, json={"score": 0.4}, headers=world.auth("annotator"))
    assert missing.status_code == 428


def test_status_changes_need_a_reviewer(api: TestClient, world: World) -> None:
    made = create(api, world)
    target = url(world, f"/{made['id']}")
    fields = {k: made[k] for k in ("image_id", "category_id", "bbox", "score")}  # unknown fields are refused
    refused = api.patch(target, json={"version": 1, "status": "accepted"}, headers=world.auth("annotator"))
    assert refused.status_code == 403 and "reviewer" in refused.json()["detail"]
    as_accepted = {**fields, "status": "accepted"}
    assert api.post(url(world), json=as_accepted, headers=world.auth("annotator")).status_code == 403
    accepted = api.patch(target, json={"version": 1, "status": "accepted"}, headers=world.auth("reviewer"))
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"


def test_bulk_review_relabel_delete_and_undo(api: TestClient, world: World) -> None:
    ids = [create(api, world)["id"] for _ in range(3)]
    reviewed = api.post(
        url(world, "/review"), json={"ids": ids[:2], "status": "rejected"}, headers=world.auth("reviewer")
    )
    assert reviewed.json()["changed"] == 2
    relabeled = api.post(
        url(world, "/relabel"),
        json={"ids": ids, "category_id": world.categories["bus"]},
        headers=world.auth("annotator"),
    )
    assert relabeled.json()["changed"] == 3
    unknown = api.post(url(world, "/delete"), json={"ids": [*ids, 99999]}, headers=world.auth("annotator"))
    assert unknown.status_code == 422 and "99999" in unknown.json()["detail"]
    deleted = api.post(url(world, "/delete"), json={"ids": ids}, headers=world.auth("annotator"))
    assert deleted.json()["deleted"] == 3
    assert (
        api.get(
            url(world), params={"image_id": world.images["zidane.jpg"]}, headers=world.auth("viewer")
        ).json()
        == []
    )
    history = f"/api/v1/projects/{world.project_id}/history"
    undone = api.post(f"{history}/undo", headers=world.auth("reviewer")).json()
    assert sorted(undone["annotation_ids"]) == ids and undone["undo"]["description"] == "delete 3"
    back = api.get(
        url(world), params={"image_id": world.images["zidane.jpg"]}, headers=world.auth("viewer")
    ).json()
    assert sorted(a["id"] for a in back) == ids and {a["category_id"] for a in back} == {
        world.categories["bus"]
    }
    assert (
        api.post(f"{history}/redo", headers=world.auth("reviewer")).json()["redo"]["description"]
        == "delete 3"
    )
    batches = api.get(history, headers=world.auth("viewer")).json()
    assert [b["kind"] for b in batches[:2]] == ["redo", "undo"]


def test_undo_restores_and_a_new_change_empties_the_redo_stack(api: TestClient, world: World) -> None:
    made = create(api, world)
    target = url(world, f"/{made['id']}")
    api.patch(target, json={"version": 1, "score": 0.3}, headers=world.auth("annotator"))
    history = f"/api/v1/projects/{world.project_id}/history"
    assert api.post(f"{history}/undo", headers=world.auth("reviewer")).status_code == 200
    restored = api.get(target, headers=world.auth("viewer")).json()
    assert (restored["score"], restored["version"]) == (None, 3)
    assert (
        api.patch(target, json={"version": 3, "score": 0.9}, headers=world.auth("annotator")).status_code
        == 200
    )
    assert api.post(f"{history}/redo", headers=world.auth("reviewer")).json() == {"redo": None}
    assert api.get(target, headers=world.auth("viewer")).json()["score"] == 0.9


def test_categories_create_rename_merge(api: TestClient, world: World) -> None:
    cats = f"/api/v1/projects/{world.project_id}/categories"
    dog = api.post(cats, json={"name": "dog"}, headers=world.auth("annotator")).json()
    assert dog["name"] == "dog" and dog["color"].startswith("#")
    taken = api.patch(f"{cats}/{dog['id']}", json={"name": "bus"}, headers=world.auth("reviewer"))
    assert taken.status_code == 409 and "merge" in taken.json()["detail"]
    renamed = api.patch(f"{cats}/{dog['id']}", json={"name": "puppy"}, headers=world.auth("reviewer")).json()
    assert renamed["name"] == "puppy"
    merged = api.post(
        f"{cats}/merge",
        json={"source_ids": [world.categories["bus"]], "target_id": world.categories["person"]},
        headers=world.auth("reviewer"),
    ).json()
    assert merged["moved"] == 1
    counts = {c["name"]: c["counts"] for c in api.get(cats, headers=world.auth("viewer")).json()}
    assert counts["person"]["proposed"] == 1 and counts["bus"]["proposed"] == 0
    api.post(f"/api/v1/projects/{world.project_id}/history/undo", headers=world.auth("reviewer"))
    counts = {c["name"]: c["counts"] for c in api.get(cats, headers=world.auth("viewer")).json()}
    assert counts["bus"]["proposed"] == 1


def test_findings_list_and_close(api: TestClient, world: World) -> None:
    findings = f"/api/v1/projects/{world.project_id}/findings"
    listed = api.get(findings, params={"status": "open"}, headers=world.auth("viewer")).json()
    assert [f["id"] for f in listed] == [world.finding_id]
    closed = api.post(
        f"{findings}/{world.finding_id}/close", json={"resolution": "fixed"}, headers=world.auth("reviewer")
    )
    assert closed.json()["status"] == "closed" and closed.json()["resolution"] == "fixed"
    assert api.get(findings, params={"status": "open"}, headers=world.auth("viewer")).json() == []
    assert (
        api.post(
            f"{findings}/999/close", json={"resolution": "x"}, headers=world.auth("reviewer")
        ).status_code
        == 404
    )


def test_errors_are_json_sentences_and_openapi_is_served(api: TestClient, world: World) -> None:
    invalid = api.post(url(world), json={"bbox": "wide"}, headers=world.auth("annotator"))
    assert invalid.status_code == 422
    detail = invalid.json()["detail"]
    assert isinstance(detail, str) and "body.image_id" in detail and "body.bbox" in detail
    schema = api.get("/openapi.json").json()
    assert "/api/v1/projects/{project_id}/annotations/{annotation_id}" in schema["paths"]
    assert (
        "multipart/form-data"
        in schema["paths"]["/api/v1/projects/{project_id}/images"]["post"]["requestBody"]["content"]
    )


def test_an_annotator_undoes_only_its_own_change(api: TestClient, world: World) -> None:
    history = f"/api/v1/projects/{world.project_id}/history"
    made = create(api, world)
    assert api.post(f"{history}/undo", headers=world.auth("viewer")).status_code == 403
    seeded = url(world, f"/{world.annotation_id}")
    edit = api.patch(seeded, json={"version": 1, "score": 0.5}, headers=world.auth("reviewer"))
    assert edit.status_code == 200, edit.text
    own = api.post(f"{history}/undo", headers=world.auth("annotator")).json()
    assert own["own"] is True and own["annotation_ids"] == [made["id"]]
    assert own["undo"]["description"].startswith("manual: 1 on")  # its create, not the reviewer's edit
    assert api.get(url(world, f"/{made['id']}"), headers=world.auth("viewer")).status_code == 404
    assert api.get(seeded, headers=world.auth("viewer")).json()["score"] == 0.5  # the reviewer's edit stays
    batches = api.get(history, headers=world.auth("viewer")).json()
    assert (batches[0]["actor"], batches[0]["via"]) == ("annotator", "api")


def test_resolving_a_finding_acts_on_its_annotation_in_one_change(api: TestClient, world: World) -> None:
    findings = f"/api/v1/projects/{world.project_id}/findings"
    ann = url(world, f"/{world.annotation_id}")
    resolve = f"{findings}/{world.finding_id}/resolve"
    annotator = api.post(resolve, json={"action": "dismiss"}, headers=world.auth("annotator"))
    assert annotator.status_code == 403 and "reviewer" in annotator.json()["detail"]
    assert api.post(resolve, json={"action": "maybe"}, headers=world.auth("reviewer")).status_code == 422
    assert api.get(ann, headers=world.auth("viewer")).json()["status"] == "proposed"  # nothing written
    assert api.get(findings, params={"status": "open"}, headers=world.auth("viewer")).json() != []
    # the template's finding names no annotation: acting on one is refused, dismissing closes it
    # (accepting it as it is would close it too, as "accepted": see test_policy / review tools)
    refused = api.post(resolve, json={"action": "reject"}, headers=world.auth("reviewer"))
    assert refused.status_code == 422 and "dismiss" in refused.json()["detail"]
    done = api.post(resolve, json={"action": "dismiss"}, headers=world.auth("reviewer")).json()
    assert (done["status"], done["resolution"]) == ("closed", "not a problem")
    again = api.post(resolve, json={"action": "dismiss"}, headers=world.auth("reviewer"))
    assert again.status_code == 409 and "already closed" in again.json()["detail"]


def test_create_on_a_video_frame_joins_or_starts_a_track(api: TestClient, world: World, tmp_path) -> None:
    from ops.unit import Env
    from store.db import open_engine
    from tests.ops.video_clip import add_squares

    engine = open_engine(world.database or world.home / "labelwright.db")
    clip = add_squares(Env(engine, world.home), tmp_path)
    engine.dispose()
    frames = api.get(
        f"/api/v1/projects/{world.project_id}/videos/{clip.video_id}/frames", headers=world.auth("viewer")
    ).json()
    frame = {f["frame_index"]: f["image_id"] for f in frames}
    started = create(api, world, image_id=frame[4], bbox=[200, 100, 30, 30], new_track=True)
    assert started["track_id"] not in (None, clip.a, clip.b, clip.c)
    joined = create(api, world, image_id=frame[5], bbox=[206, 100, 30, 30], track_id=started["track_id"])
    assert joined["track_id"] == started["track_id"]
    track = api.get(
        f"/api/v1/projects/{world.project_id}/tracks/{started['track_id']}", headers=world.auth("viewer")
    ).json()
    assert [f["frame_index"] for f in track["frames"]] == [4, 5]
    body = {"image_id": frame[5], "category_id": world.categories["person"], "bbox": [1, 1, 9, 9]}
    twice = api.post(url(world), json={**body, "track_id": clip.a}, headers=world.auth("annotator"))
    assert twice.status_code == 422 and "one annotation per frame" in twice.json()["detail"]
    photo = {**body, "image_id": world.images["zidane.jpg"], "new_track": True}
    refused = api.post(url(world), json=photo, headers=world.auth("annotator"))
    assert refused.status_code == 422 and "not a video frame" in refused.json()["detail"]
