from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from store.db import MIGRATIONS_DIR, alembic_config, open_engine


def test_migrated_schema_matches_models(engine: Engine) -> None:
    # A model change without a migration shows up here as a diff.
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_database_is_at_head_and_reopening_is_a_no_op(engine: Engine, tmp_path: Path) -> None:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == head
    again = open_engine(tmp_path / "labelwright.db")
    with again.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == head
    again.dispose()


def test_pragmas(engine: Engine) -> None:
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 30000


def test_annotation_indexes_exist(engine: Engine) -> None:
    indexes = {ix["name"]: ix["column_names"] for ix in inspect(engine).get_indexes("annotation")}
    assert indexes["ix_annotation_project_category_image"] == ["project_id", "category_id", "image_id"]
    assert indexes["ix_annotation_project_status_category"] == ["project_id", "status", "category_id"]
    assert indexes["ix_annotation_image_category"] == ["image_id", "category_id"]


def test_migrations_ship_with_the_package() -> None:
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert (MIGRATIONS_DIR / "versions" / "0001_initial.py").is_file()
