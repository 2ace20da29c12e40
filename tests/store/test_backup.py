"""Backups of a real data home (real photos, a real SQLite file) taken while a writer commits.

A restore must hold every write acknowledged before the backup began, pass integrity_check, and
refuse any archive that is damaged, tampered with or unsafe without writing anything.
"""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from store.annotations import create_annotation
from store.backup import BackupError, create_backup, restore_backup, verify_backup
from store.categories import ensure_categories
from store.db import new_session, open_engine
from store.history import begin_change
from store.ingest import ingest

DB = "labelwright.db"


def url(home: Path) -> str:
    return f"sqlite:///{home / DB}"


def seed_home(home: Path, photos: dict[str, Path]) -> tuple[int, list[int], int]:
    """Ingest the photos into project "streets": (project id, image ids, category id)."""
    src = home.parent / "src"
    src.mkdir()
    for name, path in photos.items():
        shutil.copy(path, src / name)
    engine = open_engine(home / DB)
    with new_session(engine) as s:
        report = ingest(s, home=home, project_name="streets", source=src)
        category = ensure_categories(s, project_id=report.project_id, names=["person"])[0]
        s.commit()
        ids = [a["image_id"] for a in report.to_dict()["added"]]
        assert report.project_id is not None and category.id is not None
        result = report.project_id, ids, category.id
    engine.dispose()
    return result


class WriteLoad:
    """A thread committing one annotation per change through the store functions, bounded in
    count and time; ``acked`` holds the id of every committed (acknowledged) write, in order."""

    def __init__(self, engine: Engine, project_id: int, image_ids: list[int], category_id: int) -> None:
        self.acked: list[int] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._args = engine, project_id, image_ids, category_id
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self, max_writes: int = 20_000, max_seconds: float = 20.0) -> None:
        engine, project_id, image_ids, category_id = self._args
        deadline = time.monotonic() + max_seconds
        try:
            with new_session(engine) as s:
                for i in range(max_writes):
                    if self._stop.is_set() or time.monotonic() > deadline:
                        break
                    batch = begin_change(s, project_id=project_id, actor="load", description=f"write {i}")
                    ann = create_annotation(
                        s,
                        batch=batch,
                        image_id=image_ids[i % len(image_ids)],
                        category_id=category_id,
                        bbox=[1 + i % 50, 2, 10, 10],
                    )
                    s.commit()
                    self.acked.append(ann.id)  # type: ignore[arg-type]
        except BaseException as exc:  # surfaced by stop(): a failing writer must fail the test
            self.errors.append(exc)

    def wait_for(self, count: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < count and time.monotonic() < deadline and not self.errors:
            time.sleep(0.01)
        assert len(self.acked) >= count, f"writer acknowledged {len(self.acked)} writes, wanted {count}"

    def __enter__(self) -> WriteLoad:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        assert not self._thread.is_alive()
        assert not self.errors, self.errors


def annotation_ids(db: Path) -> set[int]:
    with sqlite3.connect(db) as connection:
        return {row[0] for row in connection.execute("SELECT id FROM annotation")}


@pytest.fixture
def source(tmp_path: Path, photos: dict[str, Path]) -> tuple[Path, Path]:
    """A seeded home with a few annotations, and a backup of it: (home, archive)."""
    home = tmp_path / "home"
    pid, images, cat = seed_home(home, photos)
    engine = open_engine(home / DB)
    with WriteLoad(engine, pid, images, cat) as load:
        load.wait_for(5)
    engine.dispose()
    archive = tmp_path / "backup.tar"
    create_backup(archive, home=home, database_url=url(home))
    return home, archive


def test_backup_during_writes_restores_every_acknowledged_write(
    tmp_path: Path, photos: dict[str, Path]
) -> None:
    home = tmp_path / "home"
    pid, images, cat = seed_home(home, photos)
    engine = open_engine(home / DB)
    archive = tmp_path / "backup.tar"
    with WriteLoad(engine, pid, images, cat) as load:
        load.wait_for(50)
        before = set(load.acked)  # acknowledged before the backup began
        report = create_backup(archive, home=home, database_url=url(home))
        after_backup = len(load.acked)
        load.wait_for(after_backup + 50)  # the writer goes on: the backup is one point in time
    engine.dispose()

    restored = tmp_path / "restored"
    restore_backup(archive, home=restored)
    ids = annotation_ids(restored / DB)
    assert before <= ids, f"lost {len(before - ids)} acknowledged writes"
    assert ids <= set(load.acked[:after_backup])  # nothing from after the backup, nothing invented
    assert report.counts == {"projects": 1, "images": 2, "annotations": len(ids)}
    with sqlite3.connect(restored / DB) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    for path in (home / "images").rglob("*.jpg"):
        assert (restored / path.relative_to(home)).read_bytes() == path.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.tar", "home", "restored", "src"]


def test_verify_reads_an_intact_archive(source: tuple[Path, Path]) -> None:
    _, archive = source
    report = verify_backup(archive)
    assert report.engine == "sqlite"
    assert report.files == 3  # the database and two photos
    assert report.counts["images"] == 2 and report.counts["annotations"] >= 5


def _rewrite(
    archive: Path, change: Callable[[dict[str, bytes], dict], None], extra: list | None = None
) -> None:
    """Rewrite ``archive`` after ``change(members, manifest)``; ``extra`` TarInfos are appended."""
    with tarfile.open(archive) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    manifest = json.loads(members.pop("manifest.json"))
    change(members, manifest)
    members["manifest.json"] = json.dumps(manifest).encode()
    with tarfile.open(archive, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)


def _image(members: dict[str, bytes]) -> str:
    return next(n for n in members if n.startswith("images/"))


def _flip_db_byte(members: dict[str, bytes], _manifest: dict) -> None:
    data = bytearray(members[DB])
    data[len(data) // 2] ^= 0xFF
    members[DB] = bytes(data)


def _drop_image(members: dict[str, bytes], _manifest: dict) -> None:
    del members[_image(members)]


def _drop_image_and_its_entry(members: dict[str, bytes], manifest: dict) -> None:
    name = _image(members)
    del members[name]
    manifest["members"] = [e for e in manifest["members"] if e["name"] != name]


def _edit_count(_members: dict[str, bytes], manifest: dict) -> None:
    manifest["counts"]["annotations"] += 1


def _edit_checksum(members: dict[str, bytes], manifest: dict) -> None:
    entry = next(e for e in manifest["members"] if e["name"] == _image(members))
    entry["sha256"] = "0" * 64


def _swap_image_consistently(members: dict[str, bytes], manifest: dict) -> None:
    """Replace a photo and fix its manifest entry: only the database still knows the real hash."""
    import hashlib

    name = _image(members)
    members[name] = members[name][:-10] + b"tampered!!"
    entry = next(e for e in manifest["members"] if e["name"] == name)
    entry["sha256"] = hashlib.sha256(members[name]).hexdigest()


def _unknown_format(_members: dict[str, bytes], manifest: dict) -> None:
    manifest["version"] = 99


def _member(name: str, kind: bytes = tarfile.REGTYPE, size: int = 3) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size = kind, size if kind == tarfile.REGTYPE else 0
    if kind == tarfile.SYMTYPE:
        info.linkname = "/etc/passwd"
    return info


def _keep(_members: dict[str, bytes], _manifest: dict) -> None:
    pass


@pytest.mark.parametrize(
    ("change", "extra", "reason"),
    [
        (_flip_db_byte, None, "'labelwright.db' is damaged or changed"),
        (_drop_image, None, r"1 member\(s\) listed in manifest.json are missing"),
        (_drop_image_and_its_entry, None, "the database's images and the archived files disagree"),
        (_edit_count, None, "the database holds .* the manifest says"),
        (_edit_checksum, None, "is damaged or changed"),
        (_swap_image_consistently, None, "the database's images and the archived files disagree"),
        (_unknown_format, None, "version 99 is not supported"),
        (_keep, [_member("../escaped.txt")], "'../escaped.txt' is not a plain relative path"),
        (_keep, [_member("/tmp/absolute.txt")], "'/tmp/absolute.txt' is not a plain relative path"),
        (_keep, [_member("images/link.jpg", tarfile.SYMTYPE)], "'images/link.jpg' is a symlink"),
        (_keep, [_member("images/hard.jpg", tarfile.LNKTYPE)], "'images/hard.jpg' is a hard link"),
        (_keep, [_member("images/extra.jpg")], r"1 member\(s\) are not listed in manifest.json"),
    ],
    ids=lambda v: getattr(v, "__name__", None) if callable(v) else None,
)
def test_a_damaged_or_unsafe_archive_is_refused_and_writes_nothing(
    source: tuple[Path, Path], change: Callable, extra: list | None, reason: str
) -> None:
    _, archive = source
    _rewrite(archive, change, extra)
    parent = archive.parent
    before = sorted(parent.iterdir())
    with pytest.raises(BackupError, match=reason):
        restore_backup(archive, home=parent / "restored")
    assert sorted(parent.iterdir()) == before  # no home, no stage left behind
    assert not (parent.parent / "escaped.txt").exists() and not Path("/tmp/absolute.txt").exists()


@pytest.mark.parametrize(
    ("cut", "reason"),
    [
        ("inside_database", "is not a readable tar archive: unexpected end of data"),
        ("inside_manifest", "is not a readable tar archive: unexpected end of data"),
        ("garbage", "is not a readable tar archive"),
    ],
)
def test_a_truncated_or_foreign_file_is_refused(source: tuple[Path, Path], cut: str, reason: str) -> None:
    _, archive = source
    with tarfile.open(archive) as tar:
        offsets = {m.name: (m.offset_data, m.size) for m in tar.getmembers()}
    data = archive.read_bytes()
    start, size = offsets[DB if cut == "inside_database" else "manifest.json"]
    archive.write_bytes(b"not a tar file" * 100 if cut == "garbage" else data[: start + size // 2])
    with pytest.raises(BackupError, match=reason):
        restore_backup(archive, home=archive.parent / "restored")
    assert not (archive.parent / "restored").exists()


def test_restore_refuses_a_non_empty_home_unless_forced(source: tuple[Path, Path], tmp_path: Path) -> None:
    _, archive = source
    target = tmp_path / "target"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(BackupError, match="is not empty; restore into a new folder, or pass --force"):
        restore_backup(archive, home=target)
    assert [p.name for p in target.iterdir()] == ["notes.txt"]

    report = restore_backup(archive, home=target, force=True)
    assert report.replaced is not None
    assert (Path(report.replaced) / "notes.txt").read_text() == "mine"  # moved aside, never deleted
    assert (target / DB).is_file() and not (target / "notes.txt").exists()


def test_restore_keeps_the_model_cache_in_place(source: tuple[Path, Path], tmp_path: Path) -> None:
    _, archive = source
    target = tmp_path / "target"
    (target / "models").mkdir(parents=True)
    (target / "models" / "weights.onnx").write_bytes(b"weights")
    restore_backup(archive, home=target, keep=["models"])  # a home with only models/ counts as empty
    assert (target / "models" / "weights.onnx").read_bytes() == b"weights"
    assert len(annotation_ids(target / DB)) >= 5

    (target / "notes.txt").write_text("mine")
    report = restore_backup(archive, home=target, force=True, keep=["models"])
    assert (target / "models" / "weights.onnx").read_bytes() == b"weights"
    assert report.replaced is not None
    assert sorted(p.name for p in Path(report.replaced).iterdir()) == [
        "images",
        "labelwright.db",
        "notes.txt",
    ]


def test_restore_into_an_empty_existing_folder(source: tuple[Path, Path], tmp_path: Path) -> None:
    _, archive = source
    (tmp_path / "empty").mkdir()
    restore_backup(archive, home=tmp_path / "empty")
    assert len(annotation_ids(tmp_path / "empty" / DB)) >= 5


def test_backup_refuses_to_overwrite_and_reports_a_missing_image(source: tuple[Path, Path]) -> None:
    home, archive = source
    with pytest.raises(BackupError, match="already exists"):
        create_backup(archive, home=home, database_url=url(home))
    create_backup(archive, home=home, database_url=url(home), overwrite=True)
    next((home / "images").rglob("*.jpg")).unlink()
    out = archive.with_name("second.tar")
    with pytest.raises(BackupError, match="is missing; the database lists it"):
        create_backup(out, home=home, database_url=url(home))
    assert sorted(p.name for p in archive.parent.iterdir()) == ["backup.tar", "home", "src"]


@pytest.mark.parametrize(
    ("database_url", "reason"),
    [
        ("mysql://db/x", "backups support sqlite and postgresql databases, got 'mysql'"),
        ("sqlite://", "a backup needs a SQLite database file"),
    ],
)
def test_backup_refuses_an_unsupported_database(tmp_path: Path, database_url: str, reason: str) -> None:
    with pytest.raises(BackupError, match=reason):
        create_backup(tmp_path / "b.tar", home=tmp_path, database_url=database_url)
    assert list(tmp_path.iterdir()) == []


# PostgreSQL: a throwaway cluster on a Unix socket only (no TCP), when the server programs exist.


@pytest.fixture(scope="module")
def postgres() -> Iterator[Callable[[str], str]]:
    """``make(name)`` creates an empty database in a private cluster and returns its URL."""
    import getpass
    import os
    import subprocess
    import tempfile

    programs = [shutil.which(p) for p in ("initdb", "pg_ctl", "pg_dump", "pg_restore")]
    if not all(programs):
        pytest.skip("PostgreSQL server and client programs are not on PATH")
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root: run the cluster as the postgres account
        if (
            shutil.which("runuser") is None
            or subprocess.run(["id", "postgres"], capture_output=True).returncode
        ):
            pytest.skip("running as root without a postgres account to own the cluster")
        as_user = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="lw-pg-"))
    if as_user:
        shutil.chown(root, user="postgres")
    user = "postgres" if as_user else getpass.getuser()
    run = lambda *args: subprocess.run([*as_user, *args], check=True, capture_output=True)  # noqa: E731
    run("initdb", "-D", str(root / "data"), "-A", "trust", "-U", user)
    options = f"-k {root} -c listen_addresses='' -p 55433 -c fsync=off"
    run("pg_ctl", "-D", str(root / "data"), "-o", options, "-l", str(root / "log"), "-w", "start")

    import psycopg

    def make(name: str) -> str:
        with psycopg.connect(host=str(root), port=55433, user=user, dbname="postgres", autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")
        return f"postgresql+psycopg://{user}@/{name}?host={root}&port=55433"

    try:
        yield make
    finally:
        run("pg_ctl", "-D", str(root / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def _pg_seed(database_url: str, home: Path, photos: dict[str, Path]) -> None:
    """The three tables a backup reads, with the photos stored under ``home`` like ingest does."""
    import hashlib

    import psycopg

    from store.backup_engines import _libpq

    with psycopg.connect(**_libpq(database_url)) as c:
        c.execute("CREATE TABLE project (id serial PRIMARY KEY, name text)")
        c.execute(
            "CREATE TABLE image (id serial PRIMARY KEY, project_id int REFERENCES project,"
            " path text, sha256 text)"
        )
        c.execute("CREATE TABLE annotation (id serial PRIMARY KEY, image_id int REFERENCES image)")
        c.execute("INSERT INTO project (name) VALUES ('streets')")
        for path in photos.values():
            data = path.read_bytes()
            sha = hashlib.sha256(data).hexdigest()
            rel = f"images/1/{sha[:2]}/{sha}.jpg"
            (home / rel).parent.mkdir(parents=True, exist_ok=True)
            (home / rel).write_bytes(data)
            c.execute("INSERT INTO image (project_id, path, sha256) VALUES (1, %s, %s)", (rel, sha))


def test_postgres_backup_under_writes_restores_with_pg_restore(
    postgres: Callable[[str], str], tmp_path: Path, photos: dict[str, Path]
) -> None:
    import psycopg

    from store.backup_engines import _libpq

    source_url, target_url = postgres("source"), postgres("target")
    home = tmp_path / "home"
    _pg_seed(source_url, home, photos)
    acked: list[int] = []
    stop = threading.Event()

    def write() -> None:
        with psycopg.connect(**_libpq(source_url), autocommit=True) as c:
            for i in range(20_000):
                if stop.is_set():
                    break
                acked.append(
                    c.execute(
                        "INSERT INTO annotation (image_id) VALUES (%s) RETURNING id", (1 + i % 2,)
                    ).fetchone()[0]
                )

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        while len(acked) < 50 and writer.is_alive():
            time.sleep(0.01)
        before = set(acked)
        archive = tmp_path / "backup.tar"
        report = create_backup(archive, home=home, database_url=source_url)
        after_backup = len(acked)
    finally:
        stop.set()
        writer.join(timeout=30)
    assert report.engine == "postgresql" and report.counts["images"] == 2

    restored = tmp_path / "restored"
    restore_backup(archive, home=restored, database_url=target_url)
    with psycopg.connect(**_libpq(target_url)) as c:
        ids = {row[0] for row in c.execute("SELECT id FROM annotation")}
    assert before <= ids and ids <= set(acked[:after_backup])
    assert report.counts["annotations"] == len(ids)
    assert sorted(p.name for p in (restored / "images").rglob("*.jpg")) == sorted(
        p.name for p in (home / "images").rglob("*.jpg")
    )
    assert not (restored / "labelwright.pgdump").exists()

    again = tmp_path / "again"
    with pytest.raises(BackupError, match="the target PostgreSQL database has tables"):
        restore_backup(archive, home=again, database_url=target_url)
    assert not again.exists()
    restore_backup(archive, home=again, database_url=target_url, force=True)
    with pytest.raises(BackupError, match="this is a PostgreSQL backup"):
        restore_backup(archive, home=tmp_path / "third")


def test_postgres_backup_without_pg_dump_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(BackupError, match="pg_dump is not on PATH"):
        create_backup(
            tmp_path / "b.tar", home=tmp_path, database_url="postgresql+psycopg://u@/x?host=/nowhere"
        )
    assert list(tmp_path.iterdir()) == []
