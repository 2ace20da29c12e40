"""`labelwright serve` mounts the Gradio UI at / of the API app; the UI is guarded like the API."""

from __future__ import annotations

from pathlib import Path

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
    chat = AgentChat(settings, services=None)
    assert chat._handle is None and chat._agents == {}
