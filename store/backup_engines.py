"""The database half of a backup, one small pair of functions per engine: dump and restore.

A dump writes one file that holds a consistent snapshot of the database and returns what that
same snapshot says: the row counts for the manifest and the image files it references (so the
archive carries exactly the originals the copied rows point at, no more, no fewer).

- SQLite: the online backup API (``sqlite3.Connection.backup``) copies the live database page by
  page in one read transaction, so writers carry on (WAL) and the copy is one point in time.
- PostgreSQL: ``pg_dump --format=custom`` on a snapshot exported from a REPEATABLE READ
  transaction that also reads the counts and image paths; ``pg_restore --single-transaction``
  puts it back. Both programs must be on PATH.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

# Manifest count name -> table. The same SQL runs on both engines.
COUNTED = {"projects": "project", "images": "image", "annotations": "annotation"}
_IMAGES_SQL = "SELECT path, sha256 FROM image ORDER BY path"


class BackupError(ValueError):
    """A backup that cannot be made or an archive that is refused; the message says why."""


@dataclass(frozen=True)
class Snapshot:
    """What the dumped database holds: row counts, and image path -> sha256 of its bytes."""

    counts: dict[str, int]
    images: dict[str, str]


def engine_name(database_url: str) -> str:
    """``sqlite`` or ``postgresql`` for a SQLAlchemy URL (drivers such as ``+psycopg`` ignored)."""
    name = make_url(database_url).get_backend_name()
    if name not in DUMPS:
        raise BackupError(f"backups support sqlite and postgresql databases, got {name!r}")
    return name


def read_snapshot(cursor: Any) -> Snapshot:
    """Counts and image paths through a DB-API cursor, inside whatever snapshot it reads."""
    counts = {}
    for key, table in COUNTED.items():
        cursor.execute(f"SELECT count(*) FROM {table}")  # fixed table names, never input
        counts[key] = int(cursor.fetchone()[0])
    cursor.execute(_IMAGES_SQL)
    return Snapshot(counts=counts, images=dict(cursor.fetchall()))


def _sqlite_file(database_url: str) -> Path:
    database = make_url(database_url).database
    if not database or database == ":memory:":
        raise BackupError(f"a backup needs a SQLite database file, got {database_url!r}")
    return Path(database)


def dump_sqlite(database_url: str, dest: Path) -> Snapshot:
    """Copy the live SQLite database to ``dest`` with the online backup API."""
    source_path = _sqlite_file(database_url)
    if not source_path.is_file():
        raise BackupError(f"no database at {source_path}: nothing to back up")
    source = sqlite3.connect(source_path)
    target = sqlite3.connect(dest)
    try:
        source.execute("PRAGMA busy_timeout=30000")
        source.backup(target)  # pages=-1: one step, one read transaction, one point in time
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        return read_snapshot(target.cursor())
    finally:
        target.close()
        source.close()


def check_sqlite(path: Path) -> Snapshot:
    """Run ``PRAGMA integrity_check`` on a restored SQLite file, then read its snapshot."""
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        problems = [row[0] for row in connection.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            raise BackupError(f"the database in the archive fails integrity_check: {'; '.join(problems[:5])}")
        return read_snapshot(connection.cursor())
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"the database in the archive cannot be read: {exc}") from None
    finally:
        connection.close()


def _libpq(database_url: str) -> dict[str, str]:
    """libpq connection parameters of a SQLAlchemy URL (``?host=/run/postgresql`` for a socket)."""
    url = make_url(database_url)
    params = {
        "host": url.host or url.query.get("host"),
        "port": url.port or url.query.get("port"),
        "user": url.username,
        "password": url.password,
        "dbname": url.database,
    }
    return {key: str(value) for key, value in params.items() if value}


_PG_ENV = {
    "host": "PGHOST",
    "port": "PGPORT",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "dbname": "PGDATABASE",
}


def _client_env(database_url: str) -> dict[str, str]:
    """The environment for pg_dump / pg_restore: the connection in PG* variables, not on argv."""
    return {**os.environ, **{_PG_ENV[k]: v for k, v in _libpq(database_url).items()}}


def _program(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not on PATH; install the PostgreSQL client programs")
    return path


def _run(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(
            f"{Path(args[0]).name} failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}"
        )


def _connect_postgres(database_url: str) -> Any:
    import psycopg  # only a PostgreSQL backup needs the driver

    return psycopg.connect(**_libpq(database_url))


def dump_postgres(database_url: str, dest: Path) -> Snapshot:
    """``pg_dump --format=custom`` of the snapshot in which the counts and image paths were read."""
    import psycopg

    pg_dump = _program("pg_dump")
    env = _client_env(database_url)
    with _connect_postgres(database_url) as connection:
        connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with connection.transaction(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot_id = cursor.fetchone()[0]
            snapshot = read_snapshot(cursor)
            # The exporting transaction stays open until pg_dump has attached to its snapshot.
            _run([pg_dump, "--format=custom", f"--snapshot={snapshot_id}", f"--file={dest}"], env)
    return snapshot


def postgres_is_empty(database_url: str) -> bool:
    """Whether the target database has no tables in its public schema."""
    with _connect_postgres(database_url) as connection:
        row = connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    return int(row[0]) == 0


def restore_postgres(database_url: str, dump: Path, *, replace: bool) -> Snapshot:
    """``pg_restore`` in one transaction (all or nothing); ``replace`` drops existing objects first."""
    pg_restore = _program("pg_restore")
    env = _client_env(database_url)
    if "PGDATABASE" not in env:
        raise BackupError(f"the restore target {make_url(database_url)!r} names no database")
    args = [
        pg_restore,
        "--single-transaction",
        "--exit-on-error",
        "--no-owner",
        f"--dbname={env['PGDATABASE']}",
    ]
    _run([*args, *(["--clean", "--if-exists"] if replace else []), str(dump)], env)
    with _connect_postgres(database_url) as connection, connection.cursor() as cursor:
        return read_snapshot(cursor)


# engine -> (name of the database member in the archive, dump function)
DUMPS: dict[str, tuple[str, Callable[[str, Path], Snapshot]]] = {
    "sqlite": ("labelwright.db", dump_sqlite),
    "postgresql": ("labelwright.pgdump", dump_postgres),
}
