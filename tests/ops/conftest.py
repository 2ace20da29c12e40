"""Fixtures for operation tests: the API tests' template store (real SQLite file, real photos,
a user per role), a fresh copy of it per test, and the :class:`~ops.caller.Caller` of each role."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from ops.caller import Caller
from ops.unit import Env
from store.db import new_session, open_engine
from store.users import get_user_by_name
from tests.server.conftest import World, _build

CALLERS = ("anonymous", "outsider", "viewer", "annotator", "reviewer", "admin", "root")


@pytest.fixture(scope="session")
def ops_template(tmp_path_factory: pytest.TempPathFactory, photos: dict[str, Path]) -> World:
    return _build(tmp_path_factory.mktemp("ops-template") / "home", photos)


def caller_of(engine: Engine, who: str, via: str = "api") -> Caller | None:
    """The identity of a template user (None for anonymous), as a surface would resolve it."""
    if who == "anonymous":
        return None
    with new_session(engine) as session:
        user = get_user_by_name(session, username=who)
        assert user is not None and user.id is not None
        return Caller(user.username, user.id, user.is_admin, via=via, credential="token")


@pytest.fixture
def ops_world(ops_template: World, tmp_path: Path) -> Iterator[tuple[World, Env]]:
    """A private copy of the template store and the ops Env over it."""
    home = tmp_path / "home"
    shutil.copytree(ops_template.home, home)
    engine = open_engine(home / "labelwright.db")
    yield World(**{**ops_template.__dict__, "home": home}), Env(engine, home)
    engine.dispose()


from tests.ops.video_clip import squares_clip  # noqa: E402, F401  (a fixture for the video ops tests)
