"""The permission matrix: every API route of the real app, called by every role, a non-member,
an instance admin and an anonymous caller. The route list comes from ``app.routes`` of a real
app, so a new route is checked as soon as it exists (and ``create_app`` refuses a route without
an access rule, see test_route_without_rule_is_refused). What each call must get comes from
POLICY below, not from the rule the route declares: changing a route's rule changes behaviour
the test checks against the written policy."""

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

# Every call gets a fresh copy of the store (an allowed call may delete the project).
CALLERS = ("anonymous", "outsider", "viewer", "annotator", "reviewer", "admin", "root")
QUERY = {"/api/v1/projects/{project_id}/events": {"until_s": 0}}
# The intended policy, written out so that a reviewer reads it in one place: viewer reads;
# annotator also creates/edits annotations, classes and runs label jobs; reviewer also accepts,
# rejects, renames/merges classes, closes findings, undoes; admin also manages the project, its
# members and images. A route missing here fails test_every_route_has_a_policy.
V1 = "/api/v1"
POLICY: dict[tuple[str, str], str] = {
    ("GET", "/"): "public",
    ("GET", f"{V1}/health"): "public",
    ("POST", f"{V1}/auth/login"): "public",
    ("POST", f"{V1}/auth/logout"): "public",
    ("GET", f"{V1}/auth/me"): "authenticated",
    ("GET", f"{V1}/auth/tokens"): "authenticated",
    ("POST", f"{V1}/auth/tokens"): "authenticated",
    ("DELETE", f"{V1}/auth/tokens/{{token_id}}"): "authenticated",
    ("GET", f"{V1}/projects"): "authenticated",
    ("POST", f"{V1}/projects"): "instance_admin",
    ("GET", f"{V1}/projects/{{project_id}}"): "viewer",
    ("DELETE", f"{V1}/projects/{{project_id}}"): "admin",
    ("GET", f"{V1}/projects/{{project_id}}/members"): "admin",
    ("PUT", f"{V1}/projects/{{project_id}}/members/{{username}}"): "admin",
    ("DELETE", f"{V1}/projects/{{project_id}}/members/{{username}}"): "admin",
    ("GET", f"{V1}/projects/{{project_id}}/images"): "viewer",
    ("POST", f"{V1}/projects/{{project_id}}/images"): "admin",
    ("GET", f"{V1}/projects/{{project_id}}/images/{{image_id}}"): "viewer",
    ("GET", f"{V1}/projects/{{project_id}}/images/{{image_id}}/file"): "viewer",
    ("GET", f"{V1}/projects/{{project_id}}/images/{{image_id}}/thumbnail"): "viewer",
    ("GET", f"{V1}/projects/{{project_id}}/categories"): "viewer",
    ("POST", f"{V1}/projects/{{project_id}}/categories"): "annotator",
    ("PATCH", f"{V1}/projects/{{project_id}}/categories/{{category_id}}"): "reviewer",
    ("POST", f"{V1}/projects/{{project_id}}/categories/merge"): "reviewer",
    ("GET", f"{V1}/projects/{{project_id}}/annotations"): "viewer",
    ("POST", f"{V1}/projects/{{project_id}}/annotations"): "annotator",
    ("GET", f"{V1}/projects/{{project_id}}/annotations/{{annotation_id}}"): "viewer",
    ("PATCH", f"{V1}/projects/{{project_id}}/annotations/{{annotation_id}}"): "annotator",
    ("DELETE", f"{V1}/projects/{{project_id}}/annotations/{{annotation_id}}"): "annotator",
    ("POST", f"{V1}/projects/{{project_id}}/annotations/review"): "reviewer",
    ("POST", f"{V1}/projects/{{project_id}}/annotations/delete"): "annotator",
    ("POST", f"{V1}/projects/{{project_id}}/annotations/relabel"): "annotator",
    ("GET", f"{V1}/projects/{{project_id}}/jobs"): "viewer",
    ("POST", f"{V1}/projects/{{project_id}}/jobs"): "annotator",
    ("GET", f"{V1}/projects/{{project_id}}/jobs/{{job_id}}"): "viewer",
    ("POST", f"{V1}/projects/{{project_id}}/jobs/{{job_id}}/cancel"): "annotator",
    ("GET", f"{V1}/projects/{{project_id}}/history"): "viewer",
    ("POST", f"{V1}/projects/{{project_id}}/history/undo"): "reviewer",
    ("POST", f"{V1}/projects/{{project_id}}/history/redo"): "reviewer",
    ("GET", f"{V1}/projects/{{project_id}}/findings"): "viewer",
    ("POST", f"{V1}/projects/{{project_id}}/findings/{{finding_id}}/close"): "reviewer",
    ("GET", f"{V1}/projects/{{project_id}}/exports/{{fmt}}"): "viewer",
    ("GET", f"{V1}/projects/{{project_id}}/events"): "viewer",
}


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


def test_every_route_has_a_policy() -> None:
    routes = {(m, p) for m, p, _ in ROUTES}
    assert sorted(routes - POLICY.keys()) == [], "new routes: add each to POLICY with the role it needs"
    assert sorted(POLICY.keys() - routes) == [], "POLICY names routes the app no longer has"


def test_declared_rules_match_the_policy() -> None:
    declared = {(m, p): rule for m, p, rule in ROUTES}
    assert {k: v for k, v in declared.items() if POLICY.get(k) != v} == {}


@pytest.fixture(scope="module")
def matrix_app(template: World, tmp_path_factory: pytest.TempPathFactory) -> tuple[World, FastAPI]:
    home = tmp_path_factory.mktemp("matrix") / "home"
    shutil.copytree(template.home, home)
    world = World(**{**template.__dict__, "home": home})
    return world, make_app(world)


@pytest.fixture
def fresh(matrix_app: tuple[World, FastAPI], template: World) -> tuple[World, TestClient]:
    """The module's app over a fresh copy of the template database (an allowed call may delete
    the project); much cheaper than a new app per case."""
    world, app = matrix_app
    app.state.engine.dispose()
    db = world.home / "labelwright.db"
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    shutil.copy(template.home / "labelwright.db", db)
    return world, TestClient(app, base_url="http://localhost")  # no lifespan: jobs stay queued


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(
    ("method", "path"), [(m, p) for m, p, _ in ROUTES], ids=[f"{m} {p}" for m, p, _ in ROUTES]
)
def test_route_permissions(method: str, path: str, caller: str, fresh: tuple[World, TestClient]) -> None:
    world, client = fresh
    assert (method, path) in POLICY, f"{method} {path} has no entry in POLICY"
    rule = POLICY[(method, path)]
    headers = {} if caller == "anonymous" else world.auth(caller)
    body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    response = client.request(
        method, fill(path, world, caller), headers=headers, params=QUERY.get(path), **body
    )
    if allowed(rule, caller):
        assert response.status_code not in (401, 403), response.text
    else:
        assert response.status_code == (401 if caller == "anonymous" else 403), response.text


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
