"""Reading a backup archive without trusting it: member names and types, the manifest, checksums.

Nothing here writes to disk except :func:`verified_copy` into a file its caller opened. Members
are never extracted by tarfile itself (no ``extractall``): names are checked to be plain relative
paths, only regular files are accepted (no symlinks, hard links or devices), and every member must
be listed in the manifest with the size and SHA-256 it is read back with.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import IO, Any, TypeVar

from store.backup_engines import COUNTED, DUMPS, BackupError

MANIFEST = "manifest.json"
FORMAT = "labelwright-backup"
VERSION = 1
_MAX_MANIFEST_BYTES = 64 * 1024**2
_CHUNK = 1024**2
_SHA256 = re.compile(r"[0-9a-f]{64}")
T = TypeVar("T")


def copy_hashing(source: IO[bytes], target: IO[bytes] | None = None) -> tuple[str, int]:
    """Read ``source`` to its end (writing it to ``target`` if given); its sha256 and size."""
    digest, total = hashlib.sha256(), 0
    while chunk := source.read(_CHUNK):
        digest.update(chunk)
        total += len(chunk)
        if target is not None:
            target.write(chunk)
    return digest.hexdigest(), total


def safe_name(name: str, *, what: str = "archive member") -> str:
    """``name`` if it is a plain relative POSIX path that stays inside its root, else refuse."""
    if (
        not name
        or "\\" in name
        or "\x00" in name
        or PurePosixPath(name).is_absolute()
        or re.match(r"[A-Za-z]:", name)
        or any(part in ("", ".", "..") for part in name.split("/"))
    ):
        raise BackupError(f"{what} {name!r} is not a plain relative path; refusing it")
    return name


def _members(tar: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    members: dict[str, tarfile.TarInfo] = {}
    for info in tar.getmembers():
        name = safe_name(info.name)
        if not info.isreg():
            kind = "symlink" if info.issym() else "hard link" if info.islnk() else "non-file entry"
            raise BackupError(f"archive member {name!r} is a {kind}; only regular files are allowed")
        if name in members:
            raise BackupError(f"archive member {name!r} appears twice")
        members[name] = info
    return members


def _check_manifest(manifest: Any) -> dict[str, Any]:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{MANIFEST} does not describe a {FORMAT} archive")
    if manifest.get("version") != VERSION:
        raise BackupError(
            f"backup format version {manifest.get('version')!r} is not supported, want {VERSION}"
        )
    engine = manifest.get("engine")
    if engine not in DUMPS or manifest.get("database") != DUMPS[engine][0]:
        raise BackupError(f"{MANIFEST} names engine {engine!r} with database {manifest.get('database')!r}")
    counts = manifest.get("counts")
    if not (
        isinstance(counts, dict)
        and set(counts) == set(COUNTED)
        and all(type(v) is int and v >= 0 for v in counts.values())
    ):
        raise BackupError(f"{MANIFEST} counts must be {sorted(COUNTED)} as integers, got {counts!r}")
    entries = manifest.get("members")
    if not isinstance(entries, list) or not all(
        isinstance(e, dict)
        and isinstance(e.get("name"), str)
        and isinstance(e.get("sha256"), str)
        and _SHA256.fullmatch(e["sha256"])
        and type(e.get("size")) is int
        for e in entries
    ):
        raise BackupError(f"{MANIFEST} members must be objects with name, sha256 (hex) and size")
    return manifest


class Archive:
    """An opened backup whose listing and manifest passed their checks (contents not yet read).

    Attributes:
        manifest: the parsed manifest; ``manifest["members"]`` lists every other member.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._tar = tarfile.open(path, "r:*")  # noqa: SIM115  (closed by close / the with block)
        except (tarfile.TarError, OSError) as exc:
            raise BackupError(f"{path} is not a readable tar archive: {exc}") from None
        try:
            try:
                self._members = _members(self._tar)
            except (tarfile.TarError, EOFError) as exc:
                raise BackupError(f"{path} is not a readable tar archive: {exc}") from None
            self.manifest = _check_manifest(self._read_manifest())
            self._check_listing()
        except BaseException:
            self._tar.close()
            raise

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._tar.close()

    @property
    def entries(self) -> list[dict[str, Any]]:
        return self.manifest["members"]

    def _read_manifest(self) -> Any:
        info = self._members.get(MANIFEST)
        if info is None:
            raise BackupError(f"no {MANIFEST} in the archive: not a labelwright backup")
        if info.size > _MAX_MANIFEST_BYTES:
            raise BackupError(f"{MANIFEST} is {info.size} bytes, more than the {_MAX_MANIFEST_BYTES} allowed")
        data = self._read(info, lambda source: source.read())
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BackupError(f"{MANIFEST} is not valid JSON: {exc}") from None

    def _read(self, info: tarfile.TarInfo, reader: Callable[[IO[bytes]], T]) -> T:
        """``reader`` applied to a member's bytes; a truncated or broken archive is refused."""
        try:
            source = self._tar.extractfile(info)
            assert source is not None  # regular files only (checked by _members)
            return reader(source)
        except (tarfile.TarError, EOFError) as exc:
            raise BackupError(
                f"member {info.name!r} cannot be read, the archive is truncated or broken: {exc}"
            ) from None

    def _check_listing(self) -> None:
        listed = [e["name"] for e in self.entries]
        if len(set(listed)) != len(listed):
            raise BackupError(f"{MANIFEST} lists a member twice")
        present = set(self._members) - {MANIFEST}
        missing, extra = sorted(set(listed) - present), sorted(present - set(listed))
        if missing:
            raise BackupError(
                f"{len(missing)} member(s) listed in {MANIFEST} are missing, e.g. {missing[:3]}"
            )
        if extra:
            raise BackupError(f"{len(extra)} member(s) are not listed in {MANIFEST}, e.g. {extra[:3]}")
        if self.manifest["database"] not in present:
            raise BackupError(f"the database member {self.manifest['database']!r} is missing")

    def copy(self, entry: dict[str, Any], target: IO[bytes] | None = None) -> None:
        """Read the member ``entry`` names (into ``target`` if given) and check size and sha256."""
        sha, size = self._read(self._members[entry["name"]], lambda source: copy_hashing(source, target))
        if size != entry["size"]:
            raise BackupError(f"member {entry['name']!r} is {size} bytes, the manifest says {entry['size']}")
        if sha != entry["sha256"]:
            raise BackupError(
                f"member {entry['name']!r} is damaged or changed: its sha256 differs from the manifest"
            )

    def verify(self) -> None:
        """Check every member against the manifest; writes nothing."""
        for entry in self.entries:
            self.copy(entry)
