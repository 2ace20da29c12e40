"""Store fixtures: a real database, migrated (a SQLite file in tmp_path, and a PostgreSQL database:
``engine_url`` in tests/conftest.py runs each test on both); a session on it; an empty project."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from store.db import new_session, open_engine
from store.images import add_image
from store.models import Image, Project
from store.projects import create_project


@pytest.fixture
def engine(engine_url: str | Path) -> Iterator[Engine]:
    engine = open_engine(engine_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with new_session(engine) as session:
        yield session


@pytest.fixture
def project(session: Session) -> Project:
    return create_project(session, name="test project")


def sha(text: str) -> str:
    """A valid sha256 hex digest for a made-up image."""
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def image(session: Session, project: Project) -> Image:
    """A 640x480 image registered in ``project`` (no file on disk: the store keeps metadata)."""
    return add_image(
        session,
        project_id=project.id,
        file_name="street.jpg",
        path="images/street.jpg",
        sha256=sha("street"),
        width=640,
        height=480,
    )
