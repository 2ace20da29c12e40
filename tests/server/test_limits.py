"""Hardening of the API (issue 11): bounded numbers, 4xx for bad lookups, 409 under concurrent
creates, an OpenAPI document that tells the truth, body caps, and mask/polygon complexity caps.
The three reproductions of the issue each have a test here (marked "reproduction")."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from server.routes.schema import MAX_INT
from server.security import BULK_BODY_LIMIT, DEFAULT_BODY_LIMIT
from store.masks import MAX_RLE_RUNS, rle_from_mask
from store.polygons import MAX_POLYGON_VERTICES
from tests.server.conftest import World, make_app

BIG = 2**63  # one past SQLite's INTEGER


def _p(world: World, tail: str = "") -> str:
    return f"/api/v1/projects/{world.project_id}{tail}"


# reproduction 1: integers at or beyond 2**63 in a path, a query and a body
@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("GET", f"/api/v1/projects/{BIG}", None),
        ("DELETE", f"/api/v1/projects/{BIG}", None),
        ("GET", "/api/v1/projects/{pid}/images?offset=" + str(BIG), None),
        ("GET", "/api/v1/projects/{pid}/images?category_id=" + str(BIG), None),
        ("GET", "/api/v1/projects/{pid}/annotations/" + str(BIG), None),
        ("POST", "/api/v1/projects/{pid}/annotations/review", {"ids": [BIG], "status": "accepted"}),
        ("POST", "/api/v1/projects/{pid}/annotations/delete", {"ids": [BIG]}),
        ("POST", "/api/v1/projects/{pid}/categories/merge", {"source_ids": [1], "target_id": BIG}),
        ("DELETE", f"/api/v1/auth/tokens/{BIG}", None),
        ("GET", "/api/v1/projects/{pid}/events?after=" + str(BIG), None),
    ],
)
def test_integers_beyond_sqlite_are_422_not_500(
    client: TestClient, world: World, method: str, url: str, body: Any
) -> None:
    r = client.request(method, url.format(pid=world.project_id), json=body, headers=world.auth("root"))
    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], str) and str(MAX_INT) in r.json()["detail"]


def test_if_match_beyond_sqlite_is_400(client: TestClient, world: World) -> None:
    r = client.patch(
        _p(world, f"/annotations/{world.annotation_id}"),
        json={"score": 0.5},
        headers={**world.auth("root"), "If-Match": f'"{BIG}"'},
    )
    assert r.status_code == 400 and "2**31-1" in r.json()["detail"]


# reproduction 2: a blank class filter
@pytest.mark.parametrize("value", [" ", "%20", "%09"])
def test_blank_class_filter_is_422_with_a_sentence(client: TestClient, world: World, value: str) -> None:
    r = client.get(_p(world, f"/images?class={value}"), headers=world.auth("viewer"))
    assert r.status_code == 422, r.text
    assert "class name" in r.json()["detail"]


def test_unknown_class_filter_is_404_naming_the_classes(client: TestClient, world: World) -> None:
    r = client.get(_p(world, "/images"), params={"class": "pedestrian"}, headers=world.auth("viewer"))
    assert r.status_code == 404 and "person" in r.json()["detail"]


def _at_once(n: int, send: Any) -> list[Any]:
    barrier = threading.Barrier(n)
    out: list[Any] = [None] * n

    def one(i: int) -> None:
        barrier.wait()
        out[i] = send()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


# reproduction 3: eight simultaneous creates of the same name
def test_simultaneous_project_creates_one_201_the_rest_409(client: TestClient, world: World) -> None:
    answers = _at_once(
        8, lambda: client.post("/api/v1/projects", json={"name": "race"}, headers=world.auth("root"))
    )
    codes = sorted(r.status_code for r in answers)
    assert codes == [201] + [409] * 7, [r.text for r in answers]
    assert all("race" in r.json()["detail"] for r in answers if r.status_code == 409)


def test_simultaneous_category_creates_all_return_the_one_class(client: TestClient, world: World) -> None:
    answers = _at_once(
        8,
        lambda: client.post(_p(world, "/categories"), json={"name": "kite"}, headers=world.auth("annotator")),
    )
    assert [r.status_code for r in answers] == [201] * 8, [r.text for r in answers]
    assert len({r.json()["id"] for r in answers}) == 1


def test_trace_and_other_unsupported_methods_are_405(client: TestClient, world: World) -> None:
    for method in ("TRACE", "PUT"):
        r = client.request(method, "/api/v1/projects", headers=world.auth("root"))
        assert r.status_code == 405, (method, r.status_code)
        assert "GET" in r.headers["allow"]


def test_openapi_declares_errors_security_and_the_real_422(client: TestClient, world: World) -> None:
    doc = client.get("/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerToken"]["scheme"] == "bearer"
    assert schemes["sessionCookie"]["in"] == "cookie"
    assert schemes["tailscaleUser"]["name"] == "Tailscale-User-Login"
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            for code in ("400", "403", "413", "422"):
                example = op["responses"][code]["content"]["application/json"]["example"]
                assert isinstance(example["detail"], str), (method, path, code)
            if path != "/api/v1/health" and not path.startswith("/api/v1/auth/log"):
                assert {"401", "404", "409"} <= set(op["responses"]), (method, path)
    assert doc["paths"]["/api/v1/auth/login"]["post"]["security"] == []
    assert {"bearerToken": []} in doc["paths"]["/api/v1/projects"]["get"]["security"]
    r = client.post("/api/v1/projects", json={}, headers=world.auth("root"))
    assert r.status_code == 422 and r.json()["detail"].startswith("body.name")


def test_json_bodies_are_capped_by_route(client: TestClient, world: World) -> None:
    huge = {"name": "big", "description": "x" * (DEFAULT_BODY_LIMIT + 1)}
    r = client.post("/api/v1/projects", json=huge, headers=world.auth("root"))
    assert r.status_code == 413 and f"{DEFAULT_BODY_LIMIT:,} bytes" in r.json()["detail"]

    def chunks() -> Any:  # no Content-Length: counted as it streams
        for _ in range(5):
            yield b" " * (1024**2)

    r = client.post(
        "/api/v1/projects",
        content=chunks(),
        headers={**world.auth("root"), "Content-Type": "application/json"},
    )
    assert r.status_code == 413, r.text
    # a bulk route takes more than the default
    ids = list(range(1, 100_001))
    body = json.dumps({"ids": ids, "status": "accepted"})
    assert DEFAULT_BODY_LIMIT < len(body) * 7 < BULK_BODY_LIMIT
    r = client.post(
        _p(world, "/annotations/review"),
        content=body + " " * (DEFAULT_BODY_LIMIT),
        headers={**world.auth("root"), "Content-Type": "application/json"},
    )
    assert r.status_code != 413, r.text


def test_project_description_has_a_length_cap(client: TestClient, world: World) -> None:
    r = client.post(
        "/api/v1/projects", json={"name": "long", "description": "d" * 10_001}, headers=world.auth("root")
    )
    assert r.status_code == 422 and "10,000" in r.json()["detail"]


def test_checkerboard_mask_is_413_naming_the_limit_quickly(client: TestClient, world: World) -> None:
    """A 1-pixel checkerboard cost 36 s of CPU in one POST; now it is refused before any work."""
    h, w = 1080, 810  # bus.jpg
    board = np.indices((h, w)).sum(0) % 2 == 0
    mask = rle_from_mask(board)
    started = time.perf_counter()
    r = client.post(
        _p(world, "/annotations"),
        json={"image_id": world.images["bus.jpg"], "category_id": world.categories["bus"], "mask": mask},
        headers=world.auth("annotator"),
    )
    assert r.status_code == 413, r.text
    assert "MAX_RLE_RUNS" in r.json()["detail"] and f"{MAX_RLE_RUNS:,}" in r.json()["detail"]
    assert time.perf_counter() - started < 5


def test_polygon_is_stored_as_its_mask(client: TestClient, world: World) -> None:
    base = {"image_id": world.images["bus.jpg"], "category_id": world.categories["bus"]}
    points = [[10, 20], [110, 20], [110, 70], [10, 70]]
    r = client.post(
        _p(world, "/annotations"), json={**base, "polygon": points}, headers=world.auth("annotator")
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["mask"]["size"] == [1080, 810]
    assert created["bbox"] == pytest.approx([10, 20, 100, 50], abs=1)
    flat = [[0, 0, 40, 0, 40, 30, 0, 30]]
    r = client.patch(
        _p(world, f"/annotations/{created['id']}"),
        json={"version": created["version"], "polygon": flat},
        headers=world.auth("annotator"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["bbox"] == pytest.approx([0, 0, 40, 30], abs=1)


@pytest.mark.parametrize(
    ("extra", "code", "words"),
    [
        (
            {"polygon": [[0, 0], [5, 0], [5, 5]], "mask": {"size": [1080, 810], "counts": "0"}},
            422,
            "not both",
        ),
        ({"polygon": [[1, 2, 3]]}, 422, "even number"),
        (
            {"polygon": [[float(i), float(i % 7)] for i in range(MAX_POLYGON_VERTICES + 1)]},
            413,
            "MAX_POLYGON",
        ),
        ({"segmentation": [[0, 0, 5, 0, 5, 5]]}, 422, "segmentation"),
    ],
)
def test_bad_polygons_are_refused_never_ignored(
    client: TestClient, world: World, extra: dict[str, Any], code: int, words: str
) -> None:
    base = {"image_id": world.images["bus.jpg"], "category_id": world.categories["bus"]}
    r = client.post(_p(world, "/annotations"), json={**base, **extra}, headers=world.auth("annotator"))
    assert r.status_code == code, r.text
    assert words in r.json()["detail"]


@pytest.mark.parametrize("name", ["evil\u202egpj", "two\nlines", "nul\x00", "x" * 201])
def test_bad_project_names_are_refused_by_the_api(client: TestClient, world: World, name: str) -> None:
    r = client.post("/api/v1/projects", json={"name": name}, headers=world.auth("root"))
    assert r.status_code == 422 and "project name" in r.json()["detail"]


def test_null_class_in_a_patch_is_422(client: TestClient, world: World) -> None:
    r = client.patch(
        _p(world, f"/annotations/{world.annotation_id}"),
        json={"version": 1, "category_id": None},
        headers=world.auth("annotator"),
    )
    assert r.status_code == 422 and "category_id" in r.json()["detail"]


def test_405_also_with_a_ui_mounted_at_the_root(world: World) -> None:
    """A UI mounted at / takes every path the API does not fully match; TRACE answered 404 there."""
    from starlette.responses import PlainTextResponse

    async def ui(scope: Any, receive: Any, send: Any) -> None:
        await PlainTextResponse("not found", status_code=404)(scope, receive, send)

    app = make_app(world, mount_ui=lambda a: a.mount("/", ui))
    with TestClient(app, base_url="http://localhost") as c:
        assert c.request("TRACE", "/api/v1/projects").status_code == 405
        assert c.request("TRACE", "/").status_code == 405
        r = c.delete("/api/v1/health")
        assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
        assert c.get("/api/v1/health").status_code == 200
        assert c.get("/somewhere").status_code == 404  # the UI's own answer


@pytest.mark.parametrize("box", ["[NaN, 0, 5, 5]", "[0, 0, Infinity, 5]", "[0, 0, 5]"])
def test_non_finite_or_short_boxes_are_422(client: TestClient, world: World, box: str) -> None:
    ids = f'"image_id": {world.images["bus.jpg"]}, "category_id": {world.categories["bus"]}'
    body = f'{{{ids}, "bbox": {box}}}'
    r = client.post(
        _p(world, "/annotations"),
        content=body,
        headers={**world.auth("annotator"), "Content-Type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["detail"].startswith("body.bbox"), r.text


def test_event_stream_of_a_huge_project_id_is_422(client: TestClient, world: World) -> None:
    r = client.get(f"/api/v1/projects/{BIG}/events?until_s=0", headers=world.auth("root"))
    assert r.status_code == 422 and "project_id" in r.json()["detail"]
