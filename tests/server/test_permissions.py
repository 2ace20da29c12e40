"""The permission matrix over HTTP: every API route of the real app, called by every role, a
non-member, an instance admin and an anonymous caller.

Routes do not check roles; each calls one operation, which checks ``ops.policy.POLICY``. So what
each call must get comes from the policy of the operation the route calls: :data:`ROUTE_OPS`
maps each route to its case in the operations' matrix (tests/ops/test_policy_matrix.py, which
names the function and the POLICY entry), the route's own code is checked to call that function,
and the route list comes from ``app.routes`` of a real app, so a new route without a mapping
fails test_every_route_maps_to_an_operation (and ``create_app`` refuses a route that is neither
PUBLIC nor takes the caller, see test_route_without_a_guard_is_refused).
"""

from __future__ import annotations

import atexit
import inspect
import re
import shutil
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from ops.policy import POLICY, Rule, signed_in
from server.app import create_app
from server.deps import PUBLIC as PUBLIC_GUARD
from server.deps import CallerDep, api_routes, check_rules
from server.settings import Settings
from tests.ops.conftest import CALLERS
from tests.ops.test_policy_matrix import CASES, allowed
from tests.server.agent_fakes import Chatty, use_model
from tests.server.conftest import World, make_app

V1 = "/api/v1"
P = f"{V1}/projects/{{project_id}}"
PUBLIC = "public"  # no operation: anyone
SIGNED_IN = "signed_in"  # about the caller's own identity: ops.policy.signed_in
STREAM = "policy:project.read"  # the events stream (server/routes/events.py) authorizes project.read
# Each route -> the case of the operation it calls (tests/ops/test_policy_matrix.py CASES).
ROUTE_OPS: dict[tuple[str, str], str] = {
    ("GET", "/"): PUBLIC,
    ("GET", f"{V1}/health"): PUBLIC,
    ("POST", f"{V1}/auth/login"): PUBLIC,
    ("POST", f"{V1}/auth/logout"): PUBLIC,
    ("GET", f"{V1}/auth/me"): SIGNED_IN,
    ("GET", f"{V1}/auth/tokens"): SIGNED_IN,
    ("POST", f"{V1}/auth/tokens"): SIGNED_IN,
    ("DELETE", f"{V1}/auth/tokens/{{token_id}}"): SIGNED_IN,
    ("GET", f"{V1}/projects"): "projects.list",
    ("POST", f"{V1}/projects"): "projects.create",
    ("GET", P): "projects.get",
    ("PATCH", P): "projects.rename",
    ("DELETE", P): "projects.delete",
    ("GET", f"{P}/members"): "members.list",
    ("PUT", f"{P}/members/{{username}}"): "members.set",
    ("DELETE", f"{P}/members/{{username}}"): "members.remove",
    ("GET", f"{P}/images"): "images.list",
    ("POST", f"{P}/images"): "images.ingest",
    ("GET", f"{P}/images/{{image_id}}"): "images.get",
    ("GET", f"{P}/images/{{image_id}}/file"): "images.file_path",
    ("GET", f"{P}/images/{{image_id}}/thumbnail"): "images.file_path",
    ("GET", f"{P}/categories"): "categories.list",
    ("POST", f"{P}/categories"): "categories.ensure",
    ("PATCH", f"{P}/categories/{{category_id}}"): "categories.rename",
    ("DELETE", f"{P}/categories/{{category_id}}"): "categories.delete",
    ("POST", f"{P}/categories/merge"): "categories.merge",
    ("GET", f"{P}/annotations"): "annotations.list",
    ("POST", f"{P}/annotations"): "annotations.create",
    ("GET", f"{P}/annotations/{{annotation_id}}"): "annotations.get",
    ("PATCH", f"{P}/annotations/{{annotation_id}}"): "annotations.update",
    ("DELETE", f"{P}/annotations/{{annotation_id}}"): "annotations.delete",
    ("POST", f"{P}/annotations/review"): "annotations.set_status",
    ("POST", f"{P}/annotations/delete"): "annotations.delete_many",
    ("POST", f"{P}/annotations/relabel"): "annotations.relabel",
    ("GET", f"{P}/jobs"): "jobs.list",
    ("POST", f"{P}/jobs"): "jobs.start_label",
    ("GET", f"{P}/jobs/{{job_id}}"): "jobs.get",
    ("POST", f"{P}/jobs/{{job_id}}/cancel"): "jobs.cancel",
    ("POST", f"{P}/jobs/{{job_id}}/resume"): "jobs.resume",
    ("GET", f"{P}/history"): "history.list",
    ("POST", f"{P}/history/undo"): "history.undo_own",
    ("POST", f"{P}/history/redo"): "history.undo_own",
    ("GET", f"{P}/findings"): "findings.list",
    ("POST", f"{P}/findings/{{finding_id}}/close"): "findings.close",
    ("POST", f"{P}/findings/{{finding_id}}/resolve"): "findings.resolve",
    ("GET", f"{P}/exports/{{fmt}}"): "exports.export",
    ("GET", f"{P}/events"): STREAM,
    ("GET", f"{P}/review-queue"): "review_order.queue",
    ("GET", f"{P}/calibration"): "calibration.calibrate",
    ("POST", f"{P}/calibration/apply"): "calibration.apply",
    ("POST", f"{P}/train"): "training.start_train",
    ("POST", f"{P}/chat"): "conversations.start",
    ("GET", f"{P}/conversations"): "conversations.list",
    ("GET", f"{P}/conversations/{{run_id}}"): "conversations.messages",
    ("DELETE", f"{P}/conversations/{{run_id}}"): "conversations.delete",
    ("POST", f"{P}/images/{{image_id}}/segment"): "proposals.propose",
    ("GET", f"{P}/videos"): "videos.list_videos",
    ("GET", f"{P}/videos/{{video_id}}"): "videos.get_video",
    ("GET", f"{P}/videos/{{video_id}}/frames"): "videos.list_frames",
    ("GET", f"{P}/tracks"): "tracks.list_tracks",
    ("GET", f"{P}/tracks/{{track_id}}"): "tracks.get_track",
    ("PATCH", f"{P}/tracks/{{track_id}}"): "tracks.rename_track",
    ("POST", f"{P}/tracks/merge"): "tracks.merge_tracks",
    ("POST", f"{P}/tracks/{{track_id}}/split"): "tracks.split_track",
    ("DELETE", f"{P}/tracks/{{track_id}}"): "tracks.delete_track",
    ("POST", f"{P}/tracks/{{track_id}}/propagate"): "propagation_job.start_propagation",
    ("POST", f"{P}/imports/{{fmt}}"): "imports.import_annotations",
}
QUERY = {f"{P}/events": {"until_s": 0}, f"{P}/imports/{{fmt}}": {"status": "proposed"}}


def _app_routes() -> dict[tuple[str, str], APIRoute]:
    home = Path(tempfile.mkdtemp(prefix="lw-routes-"))
    atexit.register(shutil.rmtree, home, True)
    app = create_app(Settings(home=home, local_mode=False))
    out = {}
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            out.update({(m, context.path or route.path): route for m in route.methods})
    return out


APP_ROUTES = _app_routes()
ROUTES = sorted(APP_ROUTES)


def op_of(target: str) -> str | None:
    """The POLICY entry a route's call needs (None: public)."""
    if target == PUBLIC:
        return None
    if target == SIGNED_IN:
        return "project.list"  # Rule.authenticated: any signed-in caller
    if target.startswith("policy:"):
        return target.removeprefix("policy:")
    return CASES[target].op


def route_allows(target: str, caller: str) -> bool:
    op = op_of(target)
    return True if op is None else allowed(op, caller)


def test_every_route_maps_to_an_operation() -> None:
    assert sorted(set(ROUTES) - ROUTE_OPS.keys()) == [], "new routes: add each to ROUTE_OPS with its op"
    assert sorted(ROUTE_OPS.keys() - set(ROUTES)) == [], "ROUTE_OPS names routes the app no longer has"
    assert (
        sorted(t for t in ROUTE_OPS.values() if t not in CASES and t not in (PUBLIC, SIGNED_IN, STREAM)) == []
    )
    assert POLICY[op_of(SIGNED_IN) or ""] is Rule.authenticated


def _calls(source: str, fn: Any, module_globals: dict[str, Any]) -> bool:
    """Whether ``source`` calls ``fn`` by a name its module bound to it or to its module."""
    names = [n for n, v in module_globals.items() if v is fn]
    names += [
        f"{n}.{fn.__name__}"
        for n, v in module_globals.items()
        if isinstance(v, ModuleType) and getattr(v, fn.__name__, None) is fn
    ]
    return any(re.search(rf"(?<![\w.]){re.escape(n)}\(", source) for n in names)


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_route_calls_its_operation(method: str, path: str) -> None:
    """The mapping is the code's: the route takes the caller and calls the mapped function."""
    route, target = APP_ROUTES[(method, path)], ROUTE_OPS.get((method, path))
    assert target is not None, f"{method} {path} has no entry in ROUTE_OPS"
    guards = [g.name for g in api_routes([route])[0].guards]
    assert guards == (["public"] if target == PUBLIC else ["caller"])
    if target in (PUBLIC, STREAM):
        return
    fn = signed_in if target == SIGNED_IN else CASES[target].fn
    endpoint = route.endpoint
    assert _calls(inspect.getsource(endpoint), fn, endpoint.__globals__), (
        f"{method} {path} does not call {fn.__module__}.{fn.__name__}"
    )


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
        "run_id": 999,
        "video_id": 1,
        "track_id": 1,
    }
    return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), path)


def body(method: str, path: str, world: World) -> dict[str, Any]:
    """A valid request body, so that the call reaches the operation (a bad one is 422 for all)."""
    person, bus = world.categories["person"], world.categories["bus"]
    bodies: dict[tuple[str, str], Any] = {
        ("POST", f"{V1}/projects"): {"name": "fresh"},
        ("PATCH", P): {"name": "renamed"},
        ("PUT", f"{P}/members/{{username}}"): {"role": "viewer"},
        ("POST", f"{P}/categories"): {"name": "dog"},
        ("PATCH", f"{P}/categories/{{category_id}}"): {"name": "human"},
        ("POST", f"{P}/categories/merge"): {"source_ids": [bus], "target_id": person},
        ("POST", f"{P}/annotations"): {
            "image_id": world.images["zidane.jpg"],
            "category_id": person,
            "bbox": [10, 20, 100, 200],
        },
        ("PATCH", f"{P}/annotations/{{annotation_id}}"): {"version": 1, "score": 0.5},
        ("POST", f"{P}/annotations/review"): {"ids": [world.annotation_id], "status": "accepted"},
        ("POST", f"{P}/annotations/delete"): {"ids": [world.annotation_id]},
        ("POST", f"{P}/annotations/relabel"): {"ids": [world.annotation_id], "category_id": person},
        ("POST", f"{P}/jobs"): {"classes": ["bus"]},
        ("POST", f"{P}/findings/{{finding_id}}/close"): {"resolution": "fixed"},
        ("POST", f"{P}/findings/{{finding_id}}/resolve"): {"action": "dismiss"},
        ("POST", f"{P}/chat"): {"message": "hello"},
        ("POST", f"{P}/images/{{image_id}}/segment"): {"box": [20, 230, 800, 720]},
        ("PATCH", f"{P}/tracks/{{track_id}}"): {"category_id": person},
        ("POST", f"{P}/tracks/merge"): {"into": 1, "others": [2]},
        ("POST", f"{P}/tracks/{{track_id}}/split"): {"frame_index": 3},
        ("POST", f"{P}/tracks/{{track_id}}/propagate"): {"from_frame": 0},
    }
    if (method, path) == ("POST", f"{P}/images"):
        photo = next(p for p in sorted((world.home / "images").rglob("*")) if p.is_file())
        return {"files": [("files", ("photo.jpg", photo.read_bytes(), "image/jpeg"))]}
    if (method, path) == ("POST", f"{P}/imports/{{fmt}}"):
        empty = b'{"images": [], "annotations": [], "categories": []}'
        return {"files": [("file", ("coco.json", empty, "application/json"))]}
    if (method, path) in bodies:
        return {"json": bodies[(method, path)]}
    return {"json": {}} if method in ("POST", "PUT", "PATCH") else {}


@pytest.fixture(scope="module")
def matrix_app(template: World, tmp_path_factory: pytest.TempPathFactory) -> tuple[World, FastAPI]:
    home = tmp_path_factory.mktemp("matrix") / "home"
    shutil.copytree(template.home, home)
    world = World(**{**template.__dict__, "home": home})
    app = make_app(world)
    use_model(app, Chatty())  # chat and segment reach their operations without loading a model
    return world, app


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
@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_route_permissions(method: str, path: str, caller: str, fresh: tuple[World, TestClient]) -> None:
    world, client = fresh
    target = ROUTE_OPS.get((method, path))
    assert target is not None, f"{method} {path} has no entry in ROUTE_OPS"
    headers = {} if caller == "anonymous" else world.auth(caller)
    response = client.request(
        method,
        fill(path, world, caller),
        headers=headers,
        params=QUERY.get(path),
        **body(method, path, world),
    )
    if route_allows(target, caller):
        assert response.status_code not in (401, 403), response.text
        assert response.status_code < 500, response.text
    else:
        assert response.status_code == (401 if caller == "anonymous" else 403), response.text


def test_route_without_a_guard_is_refused() -> None:
    app = FastAPI()

    @app.get("/api/v1/forgotten")
    def forgotten() -> dict[str, str]:
        return {}

    with pytest.raises(RuntimeError, match="forgotten"):
        check_rules(app.routes)

    guarded = FastAPI()

    @guarded.get("/api/v1/guarded")
    def with_caller(caller: CallerDep) -> dict[str, str]:
        return {}

    check_rules(guarded.routes)

    @guarded.get("/api/v1/both", dependencies=[Depends(PUBLIC_GUARD)])
    def both(caller: CallerDep) -> dict[str, str]:
        return {}

    with pytest.raises(RuntimeError, match="both"):
        check_rules(guarded.routes)


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
    outsider = client.get(f"/api/v1/projects/{world.project_id}", headers=world.auth("outsider"))
    assert outsider.status_code == 403 and "not a member" in outsider.json()["detail"]
    missing = client.get("/api/v1/projects/999", headers=world.auth("outsider"))
    assert missing.status_code == 403  # an outsider is not told which project ids exist
