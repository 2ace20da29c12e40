"""`labelwright serve` mounts the Gradio UI at / of the API app; the UI is guarded like the API."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.settings import Settings
from server.ui_mount import AgentChat, mount_ui
from store.db import new_session
from store.users import create_user


def serve_app(home: Path, models_dir: Path, host: str) -> TestClient:
    settings = Settings(home=home, models=models_dir, host=host)
    app = create_app(settings, mount_ui=lambda api: mount_ui(settings, api))
    return TestClient(app, base_url="http://localhost", client=("127.0.0.1", 50000))


def test_ui_and_api_on_a_loopback_bind(tmp_path: Path, models_dir: Path) -> None:
    with serve_app(tmp_path, models_dir, "127.0.0.1") as client:
        page = client.get("/")
        assert page.status_code == 200 and "gradio" in page.text.lower()
        assert client.get("/api/v1/health").json()["auth"] == "local"
        assert client.get("/api/v1/projects").status_code == 200


def test_network_bind_requires_auth_for_ui_and_api(tmp_path: Path, models_dir: Path) -> None:
    with serve_app(tmp_path, models_dir, "0.0.0.0") as client:
        assert client.get("/api/v1/projects").status_code == 401
        assert client.get("/config").status_code == 401  # Gradio's own routes are guarded too
        to_login = client.get("/", follow_redirects=False)
        assert to_login.status_code == 303 and to_login.headers["location"] == "/login"
        assert "Sign in" in client.get("/login").text


def test_signing_in_on_the_login_page_opens_the_ui(tmp_path: Path, models_dir: Path) -> None:
    with serve_app(tmp_path, models_dir, "0.0.0.0") as client:
        with new_session(client.app.state.engine) as session:
            create_user(session, username="alice", password="correct horse")
            session.commit()
        wrong = client.post("/api/v1/auth/login", json={"username": "alice", "password": "nope"})
        assert wrong.status_code == 401
        ok = client.post("/api/v1/auth/login", json={"username": "alice", "password": "correct horse"})
        assert ok.status_code == 200
        page = client.get("/", follow_redirects=False)
        assert page.status_code == 200 and "gradio" in page.text.lower()


def test_agent_chat_starts_no_llm_until_the_first_message(tmp_path: Path, models_dir: Path) -> None:
    settings = Settings(home=tmp_path, models=models_dir)
    mounted: list[object] = []
    app = create_app(settings, mount_ui=lambda api: (mount_ui(settings, api), mounted.append(api)))
    pool = app.state.agents  # one pool for the UI chat, the API's chat route and MCP
    assert mounted and pool._handle is None and pool._agents == {}


def test_the_ui_resolves_each_request_to_its_person(tmp_path: Path, models_dir: Path) -> None:
    from server.ui_mount import ui_callers
    from store.db import open_engine

    engine = open_engine(tmp_path / "labelwright.db")
    with new_session(engine) as session:
        alice = create_user(session, username="alice", password="correct horse")
    network, loopback = ui_callers(engine, local=False), ui_callers(engine, local=True)
    who = network("alice")
    assert who is not None and (who.username, who.user_id, who.is_admin, who.via) == (
        "alice",
        alice.id,
        False,
        "ui",
    )
    assert network(None) is None and network("mallory") is None  # nobody signed in; no such user
    local = loopback(None)
    assert local is not None and (local.username, local.is_admin, local.via) == ("local", True, "ui")


def test_one_model_stack_per_process(tmp_path: Path, models_dir: Path) -> None:
    from server.app import SharedBackends
    from server.ui_mount import mount_ui

    built: list[object] = []
    shared = SharedBackends(lambda: built.append(object()) or built[-1])
    assert shared() is shared() and len(built) == 1
    settings = Settings(home=tmp_path, models=models_dir)
    mounted: list[object] = []
    app = create_app(settings, mount_ui=lambda api: (mount_ui(settings, api), mounted.append(api)))
    # the runner's handlers and the UI hold the same object: models load once per process
    handlers = [h for h in app.state.runner.handlers.values() if hasattr(h, "backends_factory")]
    assert mounted and len(handlers) >= 2  # image and video labeling (training builds its own model)
    assert all(h.backends_factory is app.state.backends for h in handlers)


def test_agent_chat_keeps_one_agent_per_person_and_project(
    tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from agent.command import CommandAgent
    from ops.caller import Caller

    started: list[object] = []

    class Agent:
        def __init__(self, ctx: object) -> None:
            self.ctx, self.heard, self.run_id = ctx, [], len(started) + 1

        def send(self, message: str, on_event: object) -> None:
            self.heard.append(message)

    def start(client: object, model: str, ctx: object, tools: object, **kw: object) -> Agent:
        started.append(Agent(ctx))
        return started[-1]  # type: ignore[return-value]

    monkeypatch.setattr(CommandAgent, "start", staticmethod(start))
    services = SimpleNamespace(tool_context=lambda caller, project_id: (caller, project_id))
    chat = AgentChat(Settings(home=tmp_path, models=models_dir), services=services)
    chat.pool._handle = SimpleNamespace(client=None, model="m")  # type: ignore[assignment]
    alice, bob = Caller("alice", 1, False, via="ui"), Caller("bob", 2, False, via="ui")
    chat(alice, 7, "delete all cars", print)
    chat(bob, 7, "yes", print)
    chat(alice, 7, "yes", print)
    assert len(started) == 2
    first, second = started
    assert first.heard == ["delete all cars", "yes"] and second.heard == ["yes"]  # type: ignore[attr-defined]
    assert first.ctx == (alice.through("agent"), 7) and second.ctx[0].username == "bob"  # type: ignore[attr-defined]
