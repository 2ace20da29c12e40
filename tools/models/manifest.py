"""The manifest: sha256 and origin of each file written into the models dir, kept in `manifest.json`.

The catalog pins the sha256 of files that are the same bytes everywhere. For the rest (converted
ONNX files, user-imported full-stack weights) the sha256 is recorded here when the file is written,
so `models verify` can still tell a file that changed since from one that did not.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from tools.models.files import atomic_output

MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class Record:
    """What was written at `path` (relative to the models dir), when, and from what.

    Attributes:
        origin: "fetch" (built from registry packages), "import" (copied in by the user) or "train"
            (a project detector `labelwright train` made).
        inputs: for fetched files, each input package spec mapped to its sha256; for imports, the
            source file it was copied from.
    """

    path: str
    sha256: str
    size: int
    origin: Literal["fetch", "import", "train"]
    inputs: dict[str, str] = field(default_factory=dict)
    recorded_at: str = ""


def load(models_dir: Path) -> dict[str, Record]:
    """Records by relative path; empty when there is no manifest yet.

    Raises:
        ValueError: the manifest exists but is not a JSON object of records.
    """
    path = models_dir / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
        return {key: Record(**value) for key, value in raw["files"].items()}
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{path}: expected a labelwright models manifest, could not read it ({exc})"
        ) from exc


def record(models_dir: Path, entry: Record) -> Record:
    """Add or replace the record for `entry.path`, stamping the time; the file is rewritten atomically."""
    stamped = Record(**{**asdict(entry), "recorded_at": datetime.now(UTC).isoformat(timespec="seconds")})
    records = load(models_dir)
    records[stamped.path] = stamped
    payload = {"files": {key: asdict(value) for key, value in sorted(records.items())}}
    with atomic_output(models_dir / MANIFEST_NAME) as tmp:
        tmp.write_text(json.dumps(payload, indent=2) + "\n")
    return stamped
