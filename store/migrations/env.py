"""Alembic environment: migrates the connection handed in by ``store.db.migrate``.

Run programmatically (``config.attributes["connection"]``) so there is no alembic.ini at runtime;
for autogenerate during development, ``alembic -x db=path/to.db revision --autogenerate`` works too.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlmodel import SQLModel

from store import models  # noqa: F401  (registers the tables on SQLModel.metadata)

config = context.config
target_metadata = SQLModel.metadata


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    # render_as_batch: SQLite cannot ALTER most things, so Alembic rebuilds tables in batches.
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    db = context.get_x_argument(as_dictionary=True).get("db", "labelwright.db")
    with create_engine(f"sqlite:///{db}").connect() as conn:
        _run(conn)
