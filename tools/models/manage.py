"""`models list` and `models verify`: what is in the models dir, and whether its bytes are still right.

Listing reads only names and sizes (instant, even with a 1 GB GGUF); verifying re-reads every file
and compares its sha256 with the catalog's pin or, for files whose bytes are not fixed in advance
(converted ONNX, imported full-stack weights), with the manifest's record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tools.models import catalog, manifest
from tools.models.files import sha256_file
from tools.models.spec import ModelEntry

State = Literal["present", "missing", "service"]
Verdict = Literal["ok", "corrupt", "missing", "unrecorded", "service"]


@dataclass(frozen=True)
class ModelStatus:
    """One catalog entry as found in the models dir.

    Attributes:
        path: the present file (preferred name first), or the preferred path when missing.
        size: size on disk, when present.
        sha256: the expected sha256 (catalog pin, else manifest record), when known.
    """

    entry: ModelEntry
    state: State
    path: Path | None
    size: int | None
    sha256: str | None


@dataclass(frozen=True)
class Verification:
    """The result of re-hashing one file: ok, corrupt (bytes or size differ), missing, unrecorded
    (present but no checksum known: placed by hand, not via fetch/import), or service (nothing to hash)."""

    entry: ModelEntry
    verdict: Verdict
    path: Path | None
    expected: str | None
    actual: str | None
    detail: str


def expected_for(entry: ModelEntry, relative: str, records: dict[str, manifest.Record]) -> str | None:
    """The sha256 the file at `relative` must have: the catalog's pin, else the manifest's record."""
    if relative == entry.path and entry.sha256 is not None:
        return entry.sha256
    record = records.get(relative)
    return None if record is None else record.sha256


def _present(models_dir: Path, entry: ModelEntry) -> list[str]:
    return [p for p in entry.paths if (models_dir / p).is_file()]


def list_models(models_dir: Path, selected: Sequence[ModelEntry] = catalog.CATALOG) -> list[ModelStatus]:
    """Presence, size and expected sha256 of each entry, without reading file contents."""
    records = manifest.load(models_dir)
    out: list[ModelStatus] = []
    for entry in selected:
        if entry.path is None:
            out.append(ModelStatus(entry, "service", None, None, None))
            continue
        present = _present(models_dir, entry)
        relative = present[0] if present else entry.path
        path = models_dir / relative
        out.append(
            ModelStatus(
                entry,
                "present" if present else "missing",
                path,
                path.stat().st_size if present else None,
                expected_for(entry, relative, records),
            )
        )
    return out


def verify_models(models_dir: Path, selected: Sequence[ModelEntry] = catalog.CATALOG) -> list[Verification]:
    """Re-hash every present file of the selected entries (each accepted name that exists)."""
    records = manifest.load(models_dir)
    out: list[Verification] = []
    for entry in selected:
        if entry.path is None:
            out.append(Verification(entry, "service", None, None, None, entry.source))
            continue
        present = _present(models_dir, entry)
        if not present:
            out.append(
                Verification(entry, "missing", models_dir / entry.path, entry.sha256, None, "not present")
            )
        for relative in present:
            out.append(_verify_file(models_dir, entry, relative, records))
    return out


def _verify_file(
    models_dir: Path, entry: ModelEntry, relative: str, records: dict[str, manifest.Record]
) -> Verification:
    path = models_dir / relative
    expected = expected_for(entry, relative, records)
    record = records.get(relative)
    size = path.stat().st_size
    wanted_size = entry.size if relative == entry.path and entry.size is not None else None
    if wanted_size is None and record is not None:
        wanted_size = record.size
    actual = sha256_file(path)
    if expected is None:
        return Verification(
            entry, "unrecorded", path, None, actual, "no checksum recorded: fetch or import it"
        )
    if wanted_size is not None and size != wanted_size:
        return Verification(entry, "corrupt", path, expected, actual, f"{size} bytes, expected {wanted_size}")
    if actual != expected:
        return Verification(entry, "corrupt", path, expected, actual, "sha256 differs")
    return Verification(entry, "ok", path, expected, actual, "sha256 ok")
