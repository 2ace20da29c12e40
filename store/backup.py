"""Backup and restore of a data home: the database and the original images in one tar archive.

The archive holds ``manifest.json`` (engine, row counts, and the SHA-256 and size of every other
member), the database member (see :mod:`store.backup_engines`) and each image at its path
relative to the data home. The images are the ones the *database snapshot* references, so rows
and files agree even while a server keeps writing; each file is checked against the hash its row
records as it is archived.

Restore trusts nothing in the archive: every member must be a regular file with a plain relative
name, listed in the manifest with a matching checksum, before anything is written; then the files
are staged in a sibling folder of the target home, the database is checked (integrity, counts,
that its images are exactly the archived files) and the folder is renamed into place. A failure
at any step removes the stage, so the target is either untouched or fully restored.

The checksums detect damage and inconsistent edits; someone who rewrites the manifest to match a
changed archive is not detected (sign the archive outside labelwright if that matters).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from store.backup_archive import FORMAT, MANIFEST, VERSION, Archive, safe_name
from store.backup_engines import (
    DUMPS,
    BackupError,
    Snapshot,
    check_sqlite,
    engine_name,
    postgres_is_empty,
    restore_postgres,
)

__all__ = ["BackupError", "BackupReport", "create_backup", "restore_backup", "verify_backup"]


@dataclass(frozen=True)
class BackupReport:
    """What a backup holds (or what a restore put back): where, which engine, counts, members."""

    archive: str
    engine: str
    counts: dict[str, int]
    files: int  # archive members besides the manifest: the database and the images
    bytes: int
    home: str | None = None  # a restore's target home
    replaced: str | None = None  # where ``force`` moved the home that was there before

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, archive: Archive, **extra: Any) -> BackupReport:
        manifest = archive.manifest
        size = archive.path.stat().st_size
        return cls(
            str(archive.path), manifest["engine"], manifest["counts"], len(archive.entries), size, **extra
        )


class _HashingReader:
    """A file wrapper that hashes what tarfile reads from it, so each image is read once."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.digest = raw, hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        chunk = self.raw.read(n)
        self.digest.update(chunk)
        return chunk


def _add(tar: tarfile.TarFile, name: str, path: Path) -> dict[str, Any]:
    with path.open("rb") as raw:
        info = tar.gettarinfo(fileobj=raw, arcname=name)
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        reader = _HashingReader(raw)
        tar.addfile(info, reader)  # type: ignore[arg-type]  (tarfile only calls read)
    return {"name": name, "sha256": reader.digest.hexdigest(), "size": info.size}


@contextlib.contextmanager
def _atomic_file(out: Path, *, overwrite: bool) -> Iterator[Path]:
    if out.exists() and not overwrite:
        raise BackupError(f"{out} already exists; choose another name or overwrite it (--force)")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _image_name(relpath: str) -> str:
    """An image's archive name: its path under the home, always in a subfolder (never beside the
    database file, where a planted ``labelwright.db-journal`` would change what SQLite reads)."""
    name = safe_name(relpath, what="image path")
    if "/" not in name:
        raise BackupError(f"image path {name!r} is not in a subfolder of the data home; refusing it")
    return name


def create_backup(out: Path, *, home: Path, database_url: str, overwrite: bool = False) -> BackupReport:
    """Write a consistent backup of ``database_url`` and the images under ``home`` to ``out``.

    Safe while a server writes: the database is copied as one snapshot, and only the images that
    snapshot references are archived. ``out`` appears only once it is complete.

    Raises:
        BackupError: ``out`` exists (without ``overwrite``), no database, or an image file is
            missing or no longer matches the hash recorded for it.
    """
    engine = engine_name(database_url)
    db_member, dump = DUMPS[engine]
    with _atomic_file(out, overwrite=overwrite) as part, tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        dumped = Path(tmp) / db_member
        snapshot = dump(database_url, dumped)
        with tarfile.open(part, "w", format=tarfile.PAX_FORMAT) as tar:
            members = [_add(tar, db_member, dumped)]
            for relpath, sha in snapshot.images.items():
                name = _image_name(relpath)
                try:
                    entry = _add(tar, name, home / name)
                except FileNotFoundError:
                    raise BackupError(f"image file {home / name} is missing; the database lists it") from None
                if entry["sha256"] != sha:
                    raise BackupError(f"image file {home / name} does not match the sha256 its row records")
                members.append(entry)
            manifest = {
                "format": FORMAT,
                "version": VERSION,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "engine": engine,
                "database": db_member,
                "counts": snapshot.counts,
                "members": members,
            }
            data = json.dumps(manifest, indent=1).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(data), int(datetime.now(UTC).timestamp()), 0o644
            tar.addfile(info, io.BytesIO(data))
    return BackupReport(str(out), engine, snapshot.counts, len(members), out.stat().st_size)


def verify_backup(archive: Path) -> BackupReport:
    """Check every member of ``archive`` against its manifest; writes nothing.

    Raises:
        BackupError: naming the first problem found.
    """
    with Archive(archive) as opened:
        opened.verify()
        return BackupReport.of(opened)


def _is_empty_home(home: Path, ignore: Sequence[str] = ()) -> bool:
    if home.exists() and not home.is_dir():
        raise BackupError(f"{home} exists and is not a folder")
    return not home.exists() or all(entry.name in ignore for entry in home.iterdir())


def _check_database(snapshot: Snapshot, archive: Archive) -> None:
    """The restored database must hold the manifest's counts and exactly the archived images."""
    manifest = archive.manifest
    if snapshot.counts != manifest["counts"]:
        raise BackupError(f"the database holds {snapshot.counts}, the manifest says {manifest['counts']}")
    files = {e["name"]: e["sha256"] for e in archive.entries if e["name"] != manifest["database"]}
    if snapshot.images != files:
        unmatched = sorted(set(snapshot.images.items()) ^ set(files.items()))
        raise BackupError(f"the database's images and the archived files disagree, e.g. {unmatched[:3]}")


def _stage(archive: Archive, stage: Path) -> Path:
    """Extract the members under ``stage`` (checking each again); returns the database file."""
    root = stage.resolve()
    for entry in archive.entries:
        is_db = entry["name"] == archive.manifest["database"]
        target = (stage / (entry["name"] if is_db else _image_name(entry["name"]))).resolve()
        if root not in target.parents:
            raise BackupError(f"archive member {entry['name']!r} would land outside {stage}")
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("xb") as out:
            archive.copy(entry, out)
            out.flush()
            os.fsync(out.fileno())
    return stage / archive.manifest["database"]


def restore_backup(
    archive: Path,
    *,
    home: Path,
    database_url: str | None = None,
    force: bool = False,
    keep: Sequence[str] = (),
) -> BackupReport:
    """Restore ``archive`` into ``home`` (and, for a PostgreSQL backup, into ``database_url``).

    Args:
        home: the data home to create; a non-empty one is refused unless ``force``, which moves
            it aside to ``<home>.replaced-<UTC time>`` (it is never deleted).
        keep: entries of an existing home that are not part of a backup and stay in place (the
            model cache); a home holding only these counts as empty.
        database_url: the target of a PostgreSQL backup; a SQLite backup becomes
            ``home/labelwright.db`` whatever this says.

    Raises:
        BackupError: the archive is damaged, tampered with or unsafe, or the target is not empty.
    """
    if not force and not _is_empty_home(home, keep):
        raise BackupError(f"{home} is not empty; restore into a new folder, or pass --force to replace it")
    with Archive(archive) as opened:
        opened.verify()  # every check passes before the first byte is written
        postgres = opened.manifest["engine"] == "postgresql"
        if postgres and (database_url is None or engine_name(database_url) != "postgresql"):
            raise BackupError("this is a PostgreSQL backup: restore it with a postgresql database URL")
        if postgres and not force and not postgres_is_empty(database_url):  # type: ignore[arg-type]
            raise BackupError("the target PostgreSQL database has tables; pass --force to replace them")
        home.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(dir=home.parent, prefix=f".{home.name}.restore-"))
        try:
            database = _stage(opened, stage)
            if postgres:
                snapshot = restore_postgres(database_url, database, replace=force)  # type: ignore[arg-type]
                database.unlink()
            else:
                snapshot = check_sqlite(database)
            _check_database(snapshot, opened)
            replaced = _swap_in(stage, home, keep)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        return BackupReport.of(opened, home=str(home), replaced=replaced)


def _swap_in(stage: Path, home: Path, keep: Sequence[str]) -> str | None:
    """Rename the stage to ``home``, carrying the ``keep`` entries of the old home into it; what
    else the old home holds is moved aside (its new path is returned), never deleted."""
    kept = [name for name in keep if (home / name).exists()]
    clash = [name for name in kept if (stage / name).exists()]
    if clash:
        raise BackupError(f"the archive holds {clash[0]!r}, which the home keeps; restore into a new folder")
    moved: list[str] = []
    replaced = None
    try:
        for name in kept:
            (home / name).rename(stage / name)
            moved.append(name)
        if _is_empty_home(home):
            if home.exists():
                home.rmdir()
            stage.rename(home)
        else:
            aside = home.with_name(f"{home.name}.replaced-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}")
            home.rename(aside)
            try:
                stage.rename(home)
            except BaseException:
                aside.rename(home)
                raise
            replaced = str(aside)
    except BaseException:
        for name in moved:  # the stage is still there: give the old home its entries back
            (stage / name).rename(home / name)
        raise
    fd = os.open(home.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return replaced
