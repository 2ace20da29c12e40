"""File names the server makes for people's data: never from a name as given.

Exports go to ``<home>/exports/<project id>-<slug>-<time>``, the slug made of letters, digits,
``-`` and ``_`` only, and every path is checked to resolve inside the data home before anything is
written, so no project name (``../../etc``, an absolute path, a symlink in the way) can send a
write elsewhere.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from ops.errors import Invalid

SLUG_MAX = 60


def slug(name: str) -> str:
    """``"../../tmp/x"`` -> ``"tmp_x"``; never empty."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")[:SLUG_MAX]
    return cleaned or "project"


def inside(home: Path, path: Path) -> Path:
    """``path`` resolved, refused unless it lies inside ``home`` (links followed)."""
    root = home.resolve()
    target = path.resolve()
    if target != root and root not in target.parents:
        raise Invalid(f"refusing to write outside the data home: {path}")
    return target


def export_dir(home: Path, project_id: int, project_name: str) -> Path:
    """A fresh folder for one export of a project, inside ``<home>/exports``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = home / "exports"
    base.mkdir(parents=True, exist_ok=True)
    folder = inside(home, base / f"{project_id}-{slug(project_name)}-{stamp}")
    n = 1
    while folder.exists():
        n += 1
        folder = inside(home, base / f"{project_id}-{slug(project_name)}-{stamp}-{n}")
    folder.mkdir(parents=True)
    return folder
