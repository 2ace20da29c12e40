"""Projects and images over HTTP: create/list/delete projects, upload (files, zip, refused
uploads that leave nothing behind, the size limit), the filtered paged list, files, thumbnails."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image as PILImage

from tests.server.conftest import World, make_app


@pytest.fixture
def root(world: World) -> TestClient:
    client = TestClient(make_app(world), base_url="http://localhost")
    client.headers.update(world.auth("root"))
    return client


def new_project(client: TestClient, name: str = "uploads") -> int:
    response = client.post("/api/v1/projects", json={"name": name})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def stored_files(home: Path) -> set[Path]:
    return {p for p in (home / "images").rglob("*") if p.is_file()} if (home / "images").exists() else set()


def test_projects_create_list_get_delete(root: TestClient, world: World) -> None:
    pid = new_project(root)
    assert root.post("/api/v1/projects", json={"name": "uploads"}).status_code == 409  # taken
    names = [p["name"] for p in root.get("/api/v1/projects").json()]
    assert names == ["other", "streets", "uploads"]
    got = root.get(f"/api/v1/projects/{world.project_id}").json()
    assert got["images"] == 2 and got["classes"]["bus"]["proposed"] == 1 and got["role"] == "admin"
    assert root.delete(f"/api/v1/projects/{pid}").status_code == 204
    assert root.get(f"/api/v1/projects/{pid}").status_code == 404
    missing = root.get("/api/v1/projects/999")
    assert missing.status_code == 404 and missing.json() == {"detail": "no project with id 999"}


def test_upload_files_and_zip(root: TestClient, world: World, photos: dict[str, Path]) -> None:
    pid = new_project(root)
    files = [("files", (name, path.read_bytes(), "image/jpeg")) for name, path in photos.items()]
    response = root.post(f"/api/v1/projects/{pid}/images", files=files)
    assert response.status_code == 201, response.text
    assert sorted(a["file_name"] for a in response.json()["added"]) == ["bus.jpg", "zidane.jpg"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("more/bus_copy.jpg", photos["bus.jpg"].read_bytes())  # same content: a duplicate
        zf.writestr("notes.txt", b"not an image")
    response = root.post(
        f"/api/v1/projects/{pid}/images", files=[("files", ("batch.zip", buffer.getvalue()))]
    )
    assert response.status_code == 201, response.text
    report = response.json()
    assert (
        report["added"] == []
        and len(report["duplicates"]) == 1
        and report["skipped"][0]["name"] == "notes.txt"
    )
    assert root.get(f"/api/v1/projects/{pid}/images").json()["total"] == 2


def test_bad_upload_is_refused_and_leaves_nothing(root: TestClient, world: World) -> None:
    pid = new_project(root)
    before = stored_files(world.home)
    response = root.post(
        f"/api/v1/projects/{pid}/images", files=[("files", ("broken.zip", b"PK\x03\x04 no zip"))]
    )
    assert response.status_code == 422
    assert "nothing was added" in response.json()["detail"] and "zip" in response.json()["detail"]
    assert stored_files(world.home) == before
    assert root.get(f"/api/v1/projects/{pid}/images").json()["total"] == 0
    assert list((world.home / "tmp").iterdir()) == []  # the staged upload is gone too
    assert root.post(f"/api/v1/projects/{pid}/images", data={"x": "1"}).status_code == 422


def test_upload_over_the_size_limit_is_413(world: World, photos: dict[str, Path]) -> None:
    client = TestClient(make_app(world, max_upload_bytes=10_000), base_url="http://localhost")
    files = [("files", ("bus.jpg", photos["bus.jpg"].read_bytes()))]
    response = client.post(
        f"/api/v1/projects/{world.project_id}/images", files=files, headers=world.auth("admin")
    )
    assert response.status_code == 413 and "limit" in response.json()["detail"]


def test_image_list_filters_and_paging(root: TestClient, world: World) -> None:
    url = f"/api/v1/projects/{world.project_id}/images"
    page = root.get(url, params={"limit": 1}).json()
    assert page["total"] == 2 and len(page["items"]) == 1 and page["limit"] == 1
    second = root.get(url, params={"limit": 1, "offset": 1}).json()["items"]
    assert second[0]["id"] != page["items"][0]["id"]
    bus = world.images["bus.jpg"]
    assert [i["id"] for i in root.get(url, params={"class": "bus"}).json()["items"]] == [bus]
    assert root.get(url, params={"class": "person"}).json()["total"] == 0
    assert [i["id"] for i in root.get(url, params={"without_annotations": True}).json()["items"]] == [
        world.images["zidane.jpg"]
    ]
    assert root.get(url, params={"status": "proposed"}).json()["total"] == 1
    assert root.get(url, params={"status": "accepted"}).json()["total"] == 0
    assert root.get(url, params={"min_score": 0.8, "max_score": 1}).json()["total"] == 1
    assert root.get(url, params={"min_score": 0.95}).json()["total"] == 0
    assert root.get(url, params={"class": "unicorn"}).status_code == 404
    assert root.get(url, params={"limit": 5000}).status_code == 422


def test_image_metadata_file_and_thumbnail(root: TestClient, world: World, photos: dict[str, Path]) -> None:
    bus = world.images["bus.jpg"]
    base = f"/api/v1/projects/{world.project_id}/images/{bus}"
    meta = root.get(base).json()
    assert (meta["file_name"], meta["width"], meta["height"]) == ("bus.jpg", 810, 1080)
    assert meta["annotations"]["proposed"] == 1 and "path" not in meta
    original = root.get(f"{base}/file")
    assert original.status_code == 200
    assert PILImage.open(io.BytesIO(original.content)).size == (810, 1080)
    thumb = root.get(f"{base}/thumbnail")
    assert thumb.headers["content-type"] == "image/jpeg"
    image = PILImage.open(io.BytesIO(thumb.content))
    assert image.format == "JPEG" and max(image.size) == 256 and image.size[1] == 256
    cached = world.home / "thumbs" / f"{meta['sha256']}.jpg"
    assert cached.is_file()
    mtime = cached.stat().st_mtime_ns
    assert root.get(f"{base}/thumbnail").content == thumb.content and cached.stat().st_mtime_ns == mtime
    # an image of another project is not reachable through this one
    other = root.get(f"/api/v1/projects/{world.other_project_id}/images").json()["items"][0]["id"]
    assert root.get(f"/api/v1/projects/{world.project_id}/images/{other}/file").status_code == 404


def test_landing_page_until_a_ui_is_mounted(world: World) -> None:
    from fastapi.responses import PlainTextResponse

    plain = TestClient(make_app(world), base_url="http://localhost")
    assert "labelwright" in plain.get("/").text and "/openapi.json" in plain.get("/").text

    def mount(app) -> None:
        app.add_api_route("/", lambda: PlainTextResponse("the ui"), include_in_schema=False)

    mounted = TestClient(make_app(world, mount_ui=mount), base_url="http://localhost")
    assert mounted.get("/").text == "the ui"
    assert mounted.get("/api/v1/health").json()["status"] == "ok"


def test_project_rename_and_name_rules(root: TestClient, world: World) -> None:
    url = f"/api/v1/projects/{world.project_id}"
    renamed = root.patch(url, json={"name": "  avenues "})
    assert renamed.status_code == 200 and renamed.json()["name"] == "avenues"
    assert root.patch(url, json={"name": "other"}).status_code == 409
    for bad in ("../x", "a/b", "tab\there", "rlo\u202eabc", "x" * 201):
        refused = root.post("/api/v1/projects", json={"name": bad})
        assert refused.status_code == 422 and "project name" in refused.json()["detail"], bad
        assert root.patch(url, json={"name": bad}).status_code == 422
    assert [p["name"] for p in root.get("/api/v1/projects").json()] == ["avenues", "other"]
    viewer = root.patch(url, json={"name": "mine"}, headers=world.auth("viewer"))
    assert viewer.status_code == 403 and "admin" in viewer.json()["detail"]
    assert root.post("/api/v1/projects", json={"name": "new"}, headers=world.auth("admin")).status_code == 403
