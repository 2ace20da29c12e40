"""The permission matrix: every API route of the real app, called by every role, a non-member,
an instance admin and an anonymous caller. The route list comes from ``app.routes`` of a real
app, so a new route is checked as soon as it exists (and ``create_app`` refuses a route without
an access rule, see test_route_without_rule_is_refused)."""

from __future__ import annotations

import atexit
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from server.app import create_app
from server.deps import RANK, api_routes, check_rules
from server.settings import Settings
from store.models import Role
from tests.server.conftest import World, make_app

# Callers from least to most privileged: an allowed call may change data (delete the project,
# revoke a token), so the calls that must be refused go first.
CALLERS = ("anonymous", "outsider", "viewer", "annotator", "reviewer", "admin", "root")
QUERY = {"/api/v1/projects/{project_id}/events": {"until_s": 0}}


def _route_table() -> list[tuple[str, str, str]]:
    home = Path(tempfile.mkdtemp(prefix="lw-routes-"))
    atexit.register(shutil.rmtree, home, True)
    app = create_app(Settings(home=home, local_mode=False))
    return sorted(
        (method, route.path, route.rules[0].name if len(route.rules) == 1 else "NO RULE")
        for route in api_routes(app.routes)
        for method in route.methods
    )


ROUTES = _route_table()


def allowed(rule: str, caller: str) -> bool:
    if rule == "public":
        return True
    if caller == "anonymous":
        return False
    if rule == "authenticated" or caller == "root":
        return True
    if rule == "instance_admin" or caller == "outsider":
        return False
    return RANK[Role(caller)] >= RANK[Role(rule)]


def fill(path: str, world: World, caller: str) -> str:
    values = {
        "project_id": world.project_id,
        "image_id": world.images["bus.jpg"],
        "annotation_id": world.annotation_id,
        "category_id": world.categories["person"],
        "job_id": world.job_id,
        "finding_id": world.finding_id,
        "token_id": world.token_ids.get(caller, world.token_ids["viewer"]),
        "username": "alice",
        "fmt": "coco",
    }
    return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), path)


def test_the_matrix_covers_the_api() -> None:
    paths = {path for _, path, _ in ROUTES}
    assert len(ROUTES) >= 40, ROUTES
    assert all(rule != "NO RULE" for _, _, rule in ROUTES)
    for must in (
        "/api/v1/projects/{project_id}/annotations/{annotation_id}",
        "/api/v1/projects/{project_id}/events",
    ):
        assert must in paths


@pytest.mark.parametrize(("method", "path", "rule"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_route_permissions(method: str, path: str, rule: str, world: World) -> None:
    app = make_app(world)
    client = TestClient(app, base_url="http://localhost")  # no lifespan: jobs stay queued
    wrong: list[str] = []
    for caller in CALLERS:
        headers = {} if caller == "anonymous" else world.auth(caller)
        body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
        response = client.request(
            method, fill(path, world, caller), headers=headers, params=QUERY.get(path), **body
        )
        code = response.status_code
        if allowed(rule, caller):
            ok = code not in (401, 403)
            want = "not 401/403"
        else:
            want = "401" if caller == "anonymous" else "403"
            ok = str(code) == want
        if not ok:
            wrong.append(f"{caller}: got {code}, want {want} ({response.text[:120]})")
    assert wrong == [], f"{method} {path} (rule {rule})"


def test_route_without_rule_is_refused() -> None:
    app = FastAPI()

    @app.get("/api/v1/forgotten")
    def forgotten() -> dict[str, str]:
        return {}

    with pytest.raises(RuntimeError, match="forgotten"):
        check_rules(app.routes)


def test_denied_answers_are_json_with_a_reason(world: World) -> None:
    client = TestClient(make_app(world), base_url="http://localhost")
    url = f"/api/v1/projects/{world.project_id}/annotations/review"
    refused = client.post(
        url, json={"ids": [world.annotation_id], "status": "accepted"}, headers=world.auth("annotator")
    )
    assert refused.status_code == 403
    assert "reviewer" in refused.json()["detail"]
    anonymous = client.get(f"/api/v1/projects/{world.project_id}")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
