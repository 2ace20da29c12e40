"""Fixtures for API tests: a real store (SQLite file, real photos) copied per test, the real app
(fake vision backends only, so label jobs run in milliseconds), and one API token per role."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url
from sqlmodel import select

from server.app import create_app
from server.settings import Settings
from store.annotations import create_annotation
from store.categories import ensure_categories
from store.db import new_session, open_engine
from store.findings import upsert_finding
from store.history import begin_change
from store.ingest import ingest
from store.jobs import create_job
from store.models import Image
from store.users import create_token, create_user, set_membership
from tests.conftest import ENGINE_PARAMS
from tests.tools.conftest import FakeBackends, FakeDetector
from tools.auto_label import KIND, LabelJob

ROLES = ("admin", "reviewer", "annotator", "viewer")
PASSWORD = "correct horse battery"


@dataclass
class World:
    """What the template store holds: ids to put in URLs and a token per role name."""

    home: Path
    project_id: int
    other_project_id: int
    images: dict[str, int]
    categories: dict[str, int]
    annotation_id: int
    finding_id: int
    job_id: int
    tokens: dict[str, str]  # role (or "root", "outsider") -> bearer token
    token_ids: dict[str, int]
    database: str = ""  # a database URL (PostgreSQL); "" = the SQLite file in home

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def _build(home: Path, photos: dict[str, Path], database: str = "") -> World:
    src = home.parent / "src"
    src.mkdir()
    for name, path in photos.items():
        shutil.copy(path, src / name)
    engine = open_engine(database or home / "labelwright.db")
    with new_session(engine) as s:
        report = ingest(s, home=home, project_name="streets", source=src)
        pid = report.project_id
        other = ingest(s, home=home, project_name="other", source=src).project_id
        cats = {c.name: c.id for c in ensure_categories(s, project_id=pid, names=["person", "bus"])}
        images = {i.file_name: i.id for i in s.exec(select(Image).where(Image.project_id == pid))}
        batch = begin_change(s, project_id=pid, actor="seed", description="seed")
        ann = create_annotation(
            s,
            batch=batch,
            image_id=images["bus.jpg"],
            category_id=cats["bus"],
            bbox=[20, 230, 780, 490],
            score=0.9,
        )
        s.commit()
        finding = upsert_finding(
            s,
            project_id=pid,
            kind="overlap",
            fingerprint="f1",
            message="two boxes overlap",
            image_id=images["bus.jpg"],
        )
        job = create_job(
            s,
            project_id=pid,
            kind=KIND,
            params={"classes": ["bus"], "image_ids": sorted(images.values()), "threshold": 0.3},
            total=len(images),
        )
        tokens, token_ids = {}, {}
        for who in (*ROLES, "root", "outsider"):
            user = create_user(s, username=who, is_admin=who == "root")
            if who in ROLES:
                set_membership(s, user_id=user.id, project_id=pid, role=who)
            tokens[who], row = create_token(s, user_id=user.id, name="test")
            token_ids[who] = row.id
        create_user(s, username="alice", password=PASSWORD)
        world = World(home, pid, other, images, cats, ann.id, finding.id, job.id, tokens, token_ids, database)
    if not database:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return world


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory, photos: dict[str, Path]) -> World:
    return _build(tmp_path_factory.mktemp("template") / "home", photos)


@pytest.fixture(params=ENGINE_PARAMS)
def world(request: pytest.FixtureRequest, tmp_path: Path) -> World:
    """A private copy of the template store for one test, on SQLite and on PostgreSQL."""
    home = tmp_path / "home"
    if request.param == "sqlite":
        template = request.getfixturevalue("template")
        shutil.copytree(template.home, home)
        return World(**{**template.__dict__, "home": home})
    return _pg_world(request, home)


# -- PostgreSQL: the same template world in a database of the test cluster (tests/conftest.py) ---


@pytest.fixture(scope="session")
def pg_world(pg_cluster: Any, tmp_path_factory: pytest.TempPathFactory, photos: dict[str, Path]) -> World:
    name = pg_cluster.create("world")
    return _build(tmp_path_factory.mktemp("pgworld") / "home", photos, database=pg_cluster.url(name))


def _pg_world(request: pytest.FixtureRequest, home: Path) -> World:
    cluster, template = request.getfixturevalue("pg_cluster"), request.getfixturevalue("pg_world")
    name = cluster.create("w", template=make_url(template.database).database)
    request.addfinalizer(lambda: cluster.drop(name))
    shutil.copytree(template.home, home)
    return World(**{**template.__dict__, "home": home, "database": cluster.url(name)})


def make_app(world: World, mount_ui: Any = None, **settings: Any) -> FastAPI:
    settings = {"host": "127.0.0.1", "local_mode": False, "database_url": world.database or None, **settings}
    config = Settings(home=world.home, **settings)
    backends = FakeBackends(detector=FakeDetector())
    handler = LabelJob(home=world.home, backends_factory=lambda: backends)
    return create_app(config, job_handlers={KIND: handler}, mount_ui=mount_ui)


@pytest.fixture
def app(world: World) -> FastAPI:
    """Auth required (local_mode off), bound to loopback so the Host check is on."""
    return make_app(world)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A client with the app's lifespan running (the job runner is started)."""
    with TestClient(app, base_url="http://localhost") as c:
        yield c
