"""Opening the SQLite database: WAL, foreign keys, and the schema migrated to the newest revision."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, create_engine

from store import models  # noqa: F401  (registers the tables on SQLModel.metadata)

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def _sqlite_pragmas(*, durable: bool) -> Callable[[Any, Any], None]:
    """The connect hook that sets up every new SQLite connection.

    WAL lets the UI read while a job writes; busy_timeout turns lock contention into waiting.
    ``synchronous=NORMAL`` in WAL mode never corrupts the database, but an OS crash or power cut
    can lose the last commits; ``durable`` selects ``FULL``, which syncs the WAL on every commit
    so an acknowledged write survives those too, at the cost measured by benchmarks/durability.py.
    """
    synchronous = "FULL" if durable else "NORMAL"

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    return on_connect


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config built in code: the scripts ship inside the package, no alembic.ini."""
    from alembic.config import Config  # alembic loads only when a database is opened

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema of ``engine``'s database to ``revision`` (a no-op when it is there)."""
    from alembic import command

    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


def open_engine(db_path: Path, *, durable: bool = False) -> Engine:
    """Create an engine on ``db_path`` and migrate its schema to the newest revision.

    Args:
        durable: commit with ``synchronous=FULL`` (survives an OS crash) instead of ``NORMAL``.
    """
    db_path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{db_path}", connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _sqlite_pragmas(durable=durable))
    migrate(engine)
    return engine


def new_session(engine: Engine) -> Session:
    return Session(engine, expire_on_commit=False)
