"""Fixtures for UI tests: a real store with the two photos ingested, and the app served live."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO


@pytest.fixture
def photo_zip(tmp_path: Path, photos: dict[str, Path]) -> Path:
    path = tmp_path / "photos.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name in ("bus.jpg", "zidane.jpg"):
            archive.write(photos[name], name)
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(tmp_path: Path, models_dir: Path, *extra: str) -> Iterator[tuple[str, Path]]:
    """The UI served by ``python -m tests.ui.live_app`` on a free port with a fresh home: (url, home)."""
    home = tmp_path / "home"
    port = _free_port()
    log = (tmp_path / "app.log").open("w")
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.ui.live_app", "--home", str(home), "--models", str(models_dir)]
        + ["--port", str(port), *extra],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 300
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"the app exited with {process.returncode}: {(tmp_path / 'app.log').read_text()}")
            try:
                if httpx.get(url, timeout=2).status_code in (200, 303):  # 303: to /login
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the app did not answer within 300 s: {(tmp_path / 'app.log').read_text()}")
            time.sleep(0.5)
        yield url, home
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
def live_app(tmp_path: Path, models_dir: Path) -> Iterator[tuple[str, Path]]:
    yield from serve(tmp_path, models_dir)


@pytest.fixture
def live_app_with_agent(tmp_path: Path, models_dir: Path) -> Iterator[tuple[str, Path]]:
    """The same, its chat backed by the command agent on the embedded LLM (skipped without weights)."""
    from agent.llm import DEFAULT_MODEL, model_path

    weights = model_path(models_dir, DEFAULT_MODEL)
    if not weights.is_file():
        pytest.skip(f"no LLM weights at {weights} (labelwright models fetch)")
    yield from serve(tmp_path, models_dir, "--agent")


PASSWORD = "a long password"
ROLES = {"vic": "viewer", "ann": "annotator", "rev": "reviewer"}


@pytest.fixture
def network_app(
    tmp_path: Path, models_dir: Path, photo_zip: Path
) -> Iterator[tuple[str, Path, dict[str, int]]]:
    """The real server with login on 127.0.0.1, as on a network bind: (url, home, ids).

    Its store holds project "street" (the two photos; one proposed person box on bus.jpg, id in
    ``ids["annotation"]``) where vic, ann and rev are viewer, annotator and reviewer (password
    :data:`PASSWORD`), and project "private" where none of them has a role.
    """
    from ops import annotations, images, projects
    from ops.caller import local_caller
    from ops.unit import Env
    from store.db import new_session, open_engine
    from store.users import create_user, set_membership

    home = tmp_path / "home"
    engine = open_engine(home / "labelwright.db")
    env, admin = Env(engine, home), local_caller()
    street = projects.create_project(env, admin, name="street").id
    projects.create_project(env, admin, name="private")
    images.ingest(env, admin, source=photo_zip, project_id=street)
    bus = images.get(env, admin, street, "bus.jpg")
    (box,) = annotations.create(
        env, admin, street, image_id=bus.id or 0,
        items=[annotations.NewAnnotation(label="person", bbox=[50, 400, 200, 500])],
    )  # fmt: skip
    with new_session(engine) as session:
        for name, role in ROLES.items():
            user = create_user(session, username=name, password=PASSWORD)
            set_membership(session, user_id=user.id or 0, project_id=street, role=role)
        session.commit()
    engine.dispose()
    for url, served in serve(tmp_path, models_dir, "--network"):
        yield url, served, {"project": street, "annotation": box.id or 0}
