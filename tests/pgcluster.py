"""A throwaway PostgreSQL cluster for the tests: ``initdb`` + ``pg_ctl`` under a temp dir.

Listens on 127.0.0.1 only, on a free port, with durability off (fsync, synchronous_commit):
the data is thrown away at the end. Databases for single tests are copied from a migrated
template (``CREATE DATABASE ... TEMPLATE``), which takes tens of milliseconds. As root (CI, our
machines) the server runs as the ``postgres`` user that Debian's package creates, since
PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import atexit
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SEARCH = ("/usr/local/bin", *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True))


def find_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl`` (PATH first), or None."""
    on_path = shutil.which("initdb")
    candidates = ([str(Path(on_path).parent)] if on_path else []) + list(SEARCH)
    for directory in candidates:
        if (Path(directory) / "initdb").is_file() and (Path(directory) / "pg_ctl").is_file():
            return Path(directory)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    """One running cluster; ``url(db)`` names a database on it, ``create(db, template)`` makes one."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="labelwright-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._names = itertools.count()
        self._user: str | None = None
        if os.geteuid() == 0:
            self._user = "postgres"
            entry = pwd.getpwnam(self._user)  # KeyError: no postgres user to run the server as
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-o", options, "-w", "start")
        atexit.register(self.stop)  # also when the session ends without its fixture teardown

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bindir / tool), *args]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.root)
        if done.returncode != 0:
            log = self.root / "log"
            raise RuntimeError(
                f"{tool} failed ({done.returncode}): {done.stderr or done.stdout}"
                + (log.read_text()[-2000:] if log.is_file() else "")
            )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE need that)."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres") as conn:
            conn.autocommit = True
            conn.execute(sql)

    def create(self, prefix: str = "t", template: str | None = None) -> str:
        """A new database (a copy of ``template`` if given); returns its name."""
        name = f"{prefix}_{next(self._names)}"
        self.admin(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
        return name

    def drop(self, name: str) -> None:
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        if not self.root.exists():
            return
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
