"""Reading a source: the entries of a zip or a folder, each opened lazily, hostile input refused.

A zip's headers are checked before anything is read (bombs by declared ratio and size, symlink,
encrypted and odd entries); a folder is walked without following links or opening non-files.
Names are normalised by :func:`clean_name`, which refuses traversal and absolute paths.
"""

from __future__ import annotations

import os
import re
import stat
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

MiB = 1 << 20
GiB = 1 << 30
_RATIO_FLOOR = 16 * MiB  # below this much output a high ratio is harmless (a blank BMP, say)
_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}


class IngestError(ValueError):
    """The source as a whole was refused or the run failed; nothing of the run was kept."""


@dataclass(frozen=True)
class IngestLimits:
    """Caps that keep a hostile or mistaken source from exhausting disk, memory or time."""

    max_total_bytes: int = 20 * GiB  # uncompressed bytes read from the whole source
    max_file_bytes: int = 200 * MiB  # one entry; larger ones are skipped
    max_ratio: float = 100.0  # uncompressed / compressed, per zip entry and for the whole zip
    max_pixels: int = 100_000_000  # one image, width x height
    max_files: int = 1_000_000  # entries in the source
    max_video_seconds: float = 2 * 3600.0  # one video's length
    max_video_frames: int = 20_000  # frames kept (sampled) from one video

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not value > 0:
                raise ValueError(f"IngestLimits.{name} must be positive, got {value!r}")


@dataclass
class Entry:
    name: str  # path inside the source, forward slashes, NFC
    skip: str | None = None  # set when the entry must not be read at all
    open: Callable[[], BinaryIO] | None = None
    compressed: int | None = None  # zip entries: compressed size, for the ratio check
    declared: int = 0  # zip entries: uncompressed size the header claims


def check_bomb(what: str, size: int, compressed: int, cap: float) -> None:
    if size > _RATIO_FLOOR and size > cap * max(compressed, 1):
        raise IngestError(
            f"zip bomb: {what} expands more than {cap:g}x its {compressed:,} compressed bytes "
            f"(max_ratio={cap:g}); raise the limit only for an archive you trust"
        )


def clean_name(raw: str) -> tuple[str, str | None]:
    """Normalise a path from a source to ``a/b.jpg``; the reason when it must not be taken."""
    name = unicodedata.normalize("NFC", raw.replace("\\", "/"))
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return name, "unsafe path: control character in name"
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return name, "unsafe path: absolute"
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        return name, "unsafe path: '..' component"
    name = "/".join(parts)
    if not parts or parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts):
        return name, "hidden"
    return name, None


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``stem-2.ext``, ``stem-3.ext``... : the first one not taken (deterministic)."""
    candidate, n, path = name, 1, PurePosixPath(name)
    while candidate in taken:
        n += 1
        candidate = str(path.with_name(f"{path.stem}-{n}{path.suffix}"))
    return candidate


@contextmanager
def open_source(
    source: Path, limits: IngestLimits
) -> Iterator[tuple[Iterator[Entry], int | None, int | None]]:
    """Yield (entries, total count or None, archive size for the ratio check or None)."""
    if source.is_dir():
        try:
            top = _listing(source)
        except OSError as exc:
            raise IngestError(f"cannot read folder {str(source)!r}: {exc.strerror}") from None
        yield _folder_entries(source, top, limits), None, None
        return
    if not source.is_file():
        raise IngestError(
            f"source must be a .zip file or a folder (or one video); {str(source)!r} is neither"
        )
    if _is_video_file(source):
        yield iter([_single_file_entry(source, limits)]), 1, None
        return
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise IngestError(f"cannot read {source.name!r} as a zip archive: {exc}") from None
    with archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
        if len(infos) > limits.max_files:
            raise IngestError(f"{source.name!r} holds {len(infos):,} files > max_files={limits.max_files:,}")
        # A first pass over the headers refuses bombs before anything is read; the entries are
        # then made again, one at a time, rather than held for the whole run.
        checked = (_zip_entry(archive, info, limits) for info in infos)
        declared, size = sum(e.declared for e in checked if e.skip is None), source.stat().st_size
        if declared > limits.max_total_bytes:
            raise IngestError(
                f"{source.name!r} declares {declared:,} uncompressed bytes > "
                f"max_total_bytes={limits.max_total_bytes:,}; raise the limit if this is intended"
            )
        check_bomb("the archive", declared, size, limits.max_ratio)
        yield (_zip_entry(archive, info, limits) for info in infos), len(infos), size


def _is_video_file(path: Path) -> bool:
    from store.videofiles import sniff_video

    try:
        with _open_regular(str(path)) as stream:
            return sniff_video(stream.read(16)) is not None
    except OSError as exc:
        raise IngestError(f"cannot read {path.name!r}: {exc}") from None


def _single_file_entry(path: Path, limits: IngestLimits) -> Entry:
    """One video given on its own: an entry named by its file name."""
    size = path.stat().st_size
    reason = None
    if size > limits.max_file_bytes:
        reason = f"file too large: {size:,} bytes > max_file_bytes={limits.max_file_bytes:,}"
    opener = None if reason is not None else (lambda: _open_regular(str(path)))
    return Entry(clean_name(path.name)[0], reason, opener)


def _zip_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: IngestLimits) -> Entry:
    name, reason = clean_name(info.filename)
    reason = reason or _zip_refusal(info)
    if reason is None:
        check_bomb(f"entry {name!r}", info.file_size, info.compress_size, limits.max_ratio)
        if info.file_size > limits.max_file_bytes:
            reason = f"file too large: {info.file_size:,} bytes > max_file_bytes={limits.max_file_bytes:,}"
    opener = None if reason is not None else (lambda: archive.open(info))
    return Entry(name, reason, opener, compressed=info.compress_size, declared=info.file_size)


def _zip_refusal(info: zipfile.ZipInfo) -> str | None:
    mode = info.external_attr >> 16  # Unix mode bits, where the archiver recorded them
    if stat.S_ISLNK(mode):
        return "symbolic link (not followed)"
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
        return "not a regular file"
    if info.flag_bits & 0x1:
        return "encrypted"
    if info.compress_type not in _ZIP_METHODS:
        return f"unsupported zip compression method {info.compress_type}"
    return None


def _folder_entries(root: Path, top: Iterator[os.DirEntry[str]], limits: IngestLimits) -> Iterator[Entry]:
    """Walk ``root`` depth-first in name order, never following a symlink or opening a non-file."""
    count, stack = 0, [top]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
            continue
        name, reason = clean_name(Path(item.path).relative_to(root).as_posix())
        if reason is None and item.is_dir(follow_symlinks=False):
            try:
                stack.append(_listing(Path(item.path)))
                continue
            except OSError as exc:
                reason = f"unreadable folder: {exc.strerror}"
        count += 1
        if count > limits.max_files:
            raise IngestError(f"{root.name!r} holds more than max_files={limits.max_files:,} files")
        reason = reason or _file_refusal(item, limits)
        opener = None if reason is not None else (lambda path=item.path: _open_regular(path))
        yield Entry(name, reason, opener)


def _file_refusal(item: os.DirEntry[str], limits: IngestLimits) -> str | None:
    if item.is_symlink():
        return "symbolic link (not followed)"
    if not item.is_file(follow_symlinks=False):
        return "not a regular file"
    try:
        size = item.stat(follow_symlinks=False).st_size
    except OSError as exc:
        return f"unreadable entry: {exc.strerror}"
    if size > limits.max_file_bytes:
        return f"file too large: {size:,} bytes > max_file_bytes={limits.max_file_bytes:,}"
    return None


def _listing(folder: Path) -> Iterator[os.DirEntry[str]]:
    with os.scandir(folder) as it:
        return iter(sorted(it, key=lambda e: e.name))


def _open_regular(path: str) -> BinaryIO:
    """Open without following a link and without blocking on a FIFO swapped in since the walk."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path} is not a regular file")
    return os.fdopen(fd, "rb")
