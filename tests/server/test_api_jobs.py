"""Label jobs over HTTP: the app's job runner (started by the lifespan) runs auto-label in the
background with fake vision backends; progress, listing, cancel; and exports as zip downloads."""

from __future__ import annotations

import io
import json
import re
import time
import zipfile

import pytest
from fastapi.testclient import TestClient

from tests.server.conftest import World, make_app


def wait_done(client: TestClient, world: World, job_id: int, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(
            f"/api/v1/projects/{world.project_id}/jobs/{job_id}", headers=world.auth("viewer")
        ).json()
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def test_label_job_runs_in_the_background(client: TestClient, world: World) -> None:
    jobs = f"/api/v1/projects/{world.project_id}/jobs"
    started = client.post(
        jobs, json={"classes": ["person"], "images": ["zidane.jpg"]}, headers=world.auth("annotator")
    )
    assert started.status_code == 202, started.text
    body = started.json()
    assert (
        body["total"] == 1
        and body["params"]["classes"] == ["person"]
        and body["params"]["requested_by"] == "annotator"
    )
    job = wait_done(client, world, body["id"])
    assert (job["state"], job["done"], job["error"]) == ("done", 1, "")
    made = client.get(
        f"/api/v1/projects/{world.project_id}/annotations",
        params={"image_id": world.images["zidane.jpg"], "tool": "auto_label"},
        headers=world.auth("viewer"),
    ).json()
    # (the template's queued job runs too: the runner picks up every queued job at start)
    assert [a["category_id"] for a in made if a["job_id"] == body["id"]] == [world.categories["person"]] * 2
    listed = client.get(jobs, headers=world.auth("viewer")).json()
    assert body["id"] in [j["id"] for j in listed]
    finished = client.post(f"{jobs}/{body['id']}/cancel", headers=world.auth("annotator"))
    assert finished.status_code == 409 and "done" in finished.json()["detail"]


def test_bad_job_requests_are_422(client: TestClient, world: World) -> None:
    jobs = f"/api/v1/projects/{world.project_id}/jobs"
    unknown = client.post(
        jobs, json={"classes": ["person"], "images": ["nope.jpg"]}, headers=world.auth("annotator")
    )
    assert unknown.status_code == 404 and "nope.jpg" in unknown.json()["detail"]
    assert client.post(jobs, json={"classes": []}, headers=world.auth("annotator")).status_code == 422


def test_queued_job_cancels_at_once(world: World) -> None:
    client = TestClient(make_app(world), base_url="http://localhost")  # no lifespan: nothing runs jobs
    jobs = f"/api/v1/projects/{world.project_id}/jobs"
    job = client.post(jobs, json={"classes": ["bus"]}, headers=world.auth("annotator")).json()
    assert job["state"] == "queued" and job["total"] == 2
    cancelled = client.post(f"{jobs}/{job['id']}/cancel", headers=world.auth("annotator")).json()
    assert cancelled["state"] == "cancelled"
    assert client.get(f"{jobs}/{job['id']}", headers=world.auth("viewer")).json()["state"] == "cancelled"


def test_exports_download_zips_with_reports(world: World) -> None:
    client = TestClient(make_app(world), base_url="http://localhost")
    base = f"/api/v1/projects/{world.project_id}/exports"
    coco = client.get(f"{base}/coco", headers=world.auth("viewer"))
    assert coco.status_code == 200 and coco.headers["content-type"] == "application/zip"
    assert re.search(r'filename="\d+-streets-[\d-]+-coco\.zip"', coco.headers["content-disposition"])
    with zipfile.ZipFile(io.BytesIO(coco.content)) as zf:
        names = set(zf.namelist())
        assert {"annotations.json", "annotations.fidelity.json", "report.json"} <= names
        data = json.loads(zf.read("annotations.json"))
        report = json.loads(zf.read("report.json"))
    assert len(data["annotations"]) == 1 and len(data["images"]) == 2
    assert report["annotations"] == 1 and report["out_path"] == "annotations.json"
    only_accepted = client.get(f"{base}/coco", params={"status": "accepted"}, headers=world.auth("viewer"))
    with zipfile.ZipFile(io.BytesIO(only_accepted.content)) as zf:
        assert json.loads(zf.read("annotations.json"))["annotations"] == []
    yolo = client.get(f"{base}/yolo", headers=world.auth("viewer"))
    with zipfile.ZipFile(io.BytesIO(yolo.content)) as zf:
        assert "data.yaml" in zf.namelist() and any(n.startswith("labels/") for n in zf.namelist())
    masks = client.get(f"{base}/masks", headers=world.auth("viewer"))
    with zipfile.ZipFile(io.BytesIO(masks.content)) as zf:
        assert "legend.json" in zf.namelist()
    assert client.get(f"{base}/pascal", headers=world.auth("viewer")).status_code == 422
    assert list((world.home / "exports").iterdir()) == []  # each export's folder is removed


def test_startup_gives_the_query_planner_statistics(world: World) -> None:
    from store.db import open_engine
    from store.models import Annotation

    if world.database:
        pytest.skip("SQLite's planner statistics; PostgreSQL's autovacuum keeps its own")
    engine = open_engine(world.home / "labelwright.db")
    row = {"project_id": world.project_id, "category_id": world.categories["person"], "bbox": [1, 1, 5, 5]}
    with engine.begin() as connection:
        rows = [{**row, "image_id": world.images["bus.jpg" if k % 2 else "zidane.jpg"]} for k in range(5000)]
        connection.execute(Annotation.__table__.insert(), rows)
    with TestClient(make_app(world), base_url="http://localhost") as client:
        with client.app.state.engine.connect() as connection:
            analyzed = {r[0] for r in connection.exec_driver_sql("SELECT tbl FROM sqlite_stat1")}
    assert "annotation" in analyzed


def test_export_of_a_hostile_project_name_stays_in_home(world: World) -> None:
    from store.db import new_session, open_engine
    from store.projects import create_project

    engine = open_engine(world.database or world.home / "labelwright.db")
    with new_session(engine) as session:  # written directly: the API refuses such a name (422)
        pid = create_project(session, name="../../../../tmp/x").id
        session.commit()
    engine.dispose()
    before = {p for p in world.home.parent.rglob("*") if world.home not in p.parents}
    client = TestClient(make_app(world), base_url="http://localhost")
    response = client.get(f"/api/v1/projects/{pid}/exports/coco", headers=world.auth("root"))
    assert response.status_code == 200, response.text
    disposition = response.headers["content-disposition"]
    assert re.search(rf'filename="{pid}-tmp_x-[\d-]+-coco\.zip"', disposition) and ".." not in disposition
    with zipfile.ZipFile(io.BytesIO(response.content)) as zf:
        assert {"annotations.json", "report.json"} <= set(zf.namelist())
    assert {p for p in world.home.parent.rglob("*") if world.home not in p.parents} == before
    assert list((world.home / "exports").iterdir()) == []


def test_a_cancelled_job_resumes(world: World) -> None:
    client = TestClient(make_app(world), base_url="http://localhost")  # no lifespan: nothing runs jobs
    jobs = f"/api/v1/projects/{world.project_id}/jobs"
    job = client.post(jobs, json={"classes": ["bus"]}, headers=world.auth("annotator")).json()
    client.post(f"{jobs}/{job['id']}/cancel", headers=world.auth("annotator"))
    assert client.post(f"{jobs}/{job['id']}/resume", headers=world.auth("viewer")).status_code == 403
    resumed = client.post(f"{jobs}/{job['id']}/resume", headers=world.auth("annotator")).json()
    assert (resumed["state"], resumed["cancel_requested"]) == ("queued", False)
    assert client.post(f"{jobs}/999/resume", headers=world.auth("annotator")).status_code == 404


def test_the_server_label_batch_setting_reaches_its_label_handler(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """LABELWRIGHT_LABEL_BATCH: images per model call of the server's label jobs (default: 8 on a
    GPU, 1 on CPU); a bad value is refused at start with the setting's name."""
    from pydantic import ValidationError

    from server.app import default_handlers
    from server.settings import Settings
    from tests.tools.conftest import FakeBackends
    from tools.auto_label import KIND
    from tools.overlapped_label import OverlappedLabelJob

    monkeypatch.setenv("LABELWRIGHT_LABEL_BATCH", "4")
    handler = default_handlers(Settings(home=tmp_path), FakeBackends)[KIND]
    assert isinstance(handler, OverlappedLabelJob) and handler.batch == 4
    monkeypatch.delenv("LABELWRIGHT_LABEL_BATCH")
    assert default_handlers(Settings(home=tmp_path), FakeBackends)[KIND].batch == 1  # CPU fakes
    monkeypatch.setenv("LABELWRIGHT_LABEL_BATCH", "0")
    with pytest.raises(ValidationError, match="label_batch"):
        Settings(home=tmp_path)
