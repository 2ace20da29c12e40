"""Store fixtures: a real SQLite file in tmp_path, migrated; a session on it; an empty project."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from store.db import new_session, open_engine
from store.models import Project
from store.projects import create_project


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = open_engine(tmp_path / "labelwright.db")
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with new_session(engine) as session:
        yield session


@pytest.fixture
def project(session: Session) -> Project:
    return create_project(session, name="test project")
