"""`models import DIR`: copy recognised full-stack weights into the models dir (the air-gapped path).

Files are recognised by name (the names their publishers use, see `ModelEntry.import_names`) and
given a light format check so a mislabelled file is refused, then copied atomically and their sha256
recorded in the manifest for `models verify`. Nothing in DIR is changed.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from tools.models import catalog, manifest
from tools.models.files import atomic_output, sha256_file

_PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")  # legacy (non-zip) torch.save


@dataclass(frozen=True)
class Imported:
    """One recognised file: where it went, its sha256, and whether it was copied or already there."""

    source: Path
    model_id: str
    target: Path
    sha256: str
    copied: bool


@dataclass
class ImportReport:
    """What `import_dir` did: imported files, files rejected by the format check, unrecognised files."""

    imported: list[Imported] = field(default_factory=list)
    invalid: list[tuple[Path, str]] = field(default_factory=list)
    unrecognised: list[Path] = field(default_factory=list)


def format_problem(path: Path) -> str | None:
    """Why `path` is not a plausible weights file for its extension, or None if it looks right.

    `.safetensors`: an 8-byte little-endian header length followed by a JSON object header.
    `.pt` / `.bin`: a torch checkpoint, a zip archive (torch >= 1.6) or a legacy pickle.
    """
    with path.open("rb") as handle:
        head = handle.read(8)
        if path.suffix == ".safetensors":
            if len(head) < 8:
                return "too short for a safetensors file"
            (length,) = struct.unpack("<Q", head)
            if length > path.stat().st_size - 8:
                return f"safetensors header length {length} exceeds the file"
            try:
                header = json.loads(handle.read(length))
            except (UnicodeDecodeError, json.JSONDecodeError):
                return "safetensors header is not JSON"
            return None if isinstance(header, dict) else "safetensors header is not a JSON object"
    if zipfile.is_zipfile(path) or head.startswith(_PICKLE_MAGIC):
        return None
    return "not a torch checkpoint (neither a zip archive nor a pickle)"


def _copy_hashing(source: Path, target: Path) -> str:
    digest = hashlib.sha256()
    with atomic_output(target) as tmp, source.open("rb") as src, tmp.open("wb") as dst:
        for block in iter(lambda: src.read(1 << 20), b""):
            digest.update(block)
            dst.write(block)
    return digest.hexdigest()


def import_dir(models_dir: Path, source_dir: Path) -> ImportReport:
    """Copy every recognised weights file found under `source_dir` (recursively) into `models_dir`.

    Raises:
        ValueError: `source_dir` is not a directory, or two files in it map to the same target
            (checked before anything is copied).
    """
    if not source_dir.is_dir():
        raise ValueError(f"expected a directory of weight files, got {source_dir}")
    known = catalog.by_import_name()
    report = ImportReport()
    plan: dict[str, tuple[Path, str]] = {}
    for path in sorted(p for p in source_dir.rglob("*") if p.is_file()):
        if path.name not in known:
            report.unrecognised.append(path)
            continue
        entry, target = known[path.name]
        if target in plan:
            raise ValueError(f"{plan[target][0]} and {path} would both be imported as {target}; keep one")
        plan[target] = (path, entry.id)
    for target, (path, model_id) in plan.items():
        problem = format_problem(path)
        if problem is not None:
            report.invalid.append((path, problem))
            continue
        report.imported.append(_import_one(models_dir, path, model_id, target))
    return report


def _import_one(models_dir: Path, path: Path, model_id: str, target: str) -> Imported:
    dest = models_dir / target
    record = manifest.load(models_dir).get(target)
    if dest.is_file() and record is not None and dest.stat().st_size == path.stat().st_size:
        source_sha = sha256_file(path)
        if source_sha == record.sha256 == sha256_file(dest):
            return Imported(path, model_id, dest, source_sha, copied=False)
    sha = _copy_hashing(path, dest)
    manifest.record(
        models_dir,
        manifest.Record(
            path=target, sha256=sha, size=dest.stat().st_size, origin="import", inputs={"source": str(path)}
        ),
    )
    return Imported(path, model_id, dest, sha, copied=True)
