"""Checksums and atomic writes: the two guarantees every model file in the models dir relies on.

A fetch or import may be interrupted at any byte. Writing to a temporary name beside the target and
renaming it only once it is complete means a file under its final name is always whole; a checksum
then tells a whole file from a corrupt or tampered one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

_BLOCK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks so a 1 GB model never sits in memory."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


class ChecksumError(ValueError):
    """A file's bytes are not the ones the catalog or manifest recorded for it."""


def check_sha256(path: Path, expected: str) -> None:
    """Raise ChecksumError naming the file, the expected and the actual sha256 when they differ."""
    actual = sha256_file(path)
    if actual != expected:
        raise ChecksumError(f"{path}: sha256 expected {expected}, got {actual}")


@contextmanager
def atomic_output(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` only if the block succeeds.

    The temporary name ends in `.<pid>.partial`, so a leftover after a crash is never mistaken for
    the model, and two processes writing the same target do not write into one file; it is removed
    on failure.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.partial")
    tmp.unlink(missing_ok=True)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def copy_stream(source: BinaryIO, dest: BinaryIO) -> None:
    """Copy one open binary stream into another in large blocks."""
    shutil.copyfileobj(source, dest, _BLOCK)
