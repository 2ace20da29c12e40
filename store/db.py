"""Opening the database: SQLite (the embedded default) or PostgreSQL, migrated to the newest revision.

``open_engine`` takes a file path (SQLite) or an SQLAlchemy URL (``sqlite:///...`` or
``postgresql+psycopg://user@host:5432/db``). SQLite gets WAL and foreign keys per connection;
PostgreSQL gets pre-ping (a server restart must not break a long-lived worker). Migrations run
under a PostgreSQL advisory lock, so several processes starting at once upgrade the schema once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlmodel import Session, create_engine

from store import models  # noqa: F401  (registers the tables on SQLModel.metadata)

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
MIGRATION_LOCK = 7_311_202  # pg_advisory_xact_lock key: one migrating process at a time
DIALECTS = ("sqlite", "postgresql")
# How long a SQLite connection waits for another's write lock; a first migration on a loaded
# machine holds it for several seconds, longer than the sqlite3 module's 5 s default.
BUSY_TIMEOUT_MS = 30_000


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
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")  # first: switching to WAL can wait
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.close()

    return on_connect


def database_url(url_or_path: str | Path) -> URL:
    """The SQLAlchemy URL for a SQLite file path or a database URL; refuses other databases.

    Raises:
        ValueError: for a URL of an engine other than SQLite or PostgreSQL, or a PostgreSQL URL
            without the psycopg 3 driver (``postgresql+psycopg://``).
    """
    if isinstance(url_or_path, Path) or "://" not in str(url_or_path):
        return make_url(f"sqlite:///{Path(url_or_path).expanduser()}")
    url = make_url(str(url_or_path))
    if url.get_backend_name() not in DIALECTS:
        raise ValueError(f"database URL must be sqlite:/// or postgresql+psycopg://, got {url.drivername!r}")
    if url.get_backend_name() == "postgresql" and url.get_driver_name() != "psycopg":
        raise ValueError(
            f"PostgreSQL URLs must use the psycopg 3 driver (postgresql+psycopg://), got {url.drivername!r}"
        )
    return url


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
    _alembic(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to ``revision`` (development and migration tests)."""
    _alembic(engine, "downgrade", revision)


def _alembic(engine: Engine, verb: str, revision: str) -> None:
    from alembic import command

    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:  # batch migrations rebuild tables; SQLite ignores this PRAGMA inside a transaction
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()  # ends the autobegun (empty) transaction
        try:
            with connection.begin():
                # one migrating process at a time: the others wait, then find the schema at head
                if sqlite:  # the write lock first, before alembic reads the revision
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
                else:
                    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
                getattr(command, verb)(alembic_config(connection), revision)
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None before the first migration)."""
    from alembic.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    """The newest revision the shipped migrations know."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the package ships its migrations"
    return head


def open_engine(url_or_path: str | Path, *, upgrade: bool = True, durable: bool = False) -> Engine:
    """Create an engine on a SQLite file path or a database URL and (unless ``upgrade`` is False)
    migrate its schema to the newest revision.

    Args:
        durable: SQLite commits with ``synchronous=FULL`` (survives an OS crash) instead of
            ``NORMAL``; PostgreSQL's durability is the server's setting.
    """
    url = database_url(url_or_path)
    if url.get_backend_name() == "sqlite":
        if url.database:
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000}
        )
        event.listen(engine, "connect", _sqlite_pragmas(durable=durable))
    else:
        engine = create_engine(url, pool_pre_ping=True)
    if upgrade:
        migrate(engine)
    return engine


def new_session(engine: Engine) -> Session:
    return Session(engine, expire_on_commit=False)
