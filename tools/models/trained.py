"""Detectors trained on a project's own labels: registered in the models dir beside the catalog.

``labelwright train`` writes ``project/<project id>/job-<job id>.pt`` and a provenance record
``project/<project id>/job-<job id>.json`` (classes, data snapshot hash, base, epochs, imgsz,
metrics), and points ``project-<project id>-yolo`` at the newest one (``project/<project id>/
current.json``). The weights' sha256 goes to the manifest (origin ``train``), so ``models verify``
can tell a whole file from a damaged one. Nothing here trains; this is the registry.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tools.models.files import atomic_output, sha256_file

ID = re.compile(r"^project-(\d+)-yolo(?:-job(\d+))?$")


@dataclass(frozen=True)
class TrainedModel:
    """A project detector: where its weights are, what it detects, and how it came to be."""

    model_id: str  # project-<pid>-yolo-job<jid>; project-<pid>-yolo names the newest
    project_id: int
    job_id: int
    weights: str  # relative to the models dir
    classes: list[str]
    sha256: str
    provenance: dict[str, Any] = field(default_factory=dict)  # snapshot, base, epochs, imgsz, metrics


def detector_id(project_id: int) -> str:
    return f"project-{project_id}-yolo"


def is_trained_id(model_id: str) -> bool:
    return ID.match(model_id) is not None


def _folder(models_dir: Path, project_id: int) -> Path:
    return Path(models_dir) / "project" / str(int(project_id))


def register(
    models_dir: Path, *, project_id: int, job_id: int, weights: Path, classes: list[str],
    provenance: dict[str, Any],
) -> TrainedModel:  # fmt: skip
    """Copy ``weights`` into the models dir and make them the project's current detector."""
    folder = _folder(models_dir, project_id)
    target = folder / f"job-{job_id}.pt"
    with atomic_output(target) as tmp:
        shutil.copyfile(weights, tmp)
    model = TrainedModel(
        f"{detector_id(project_id)}-job{job_id}", project_id, job_id,
        str(target.relative_to(models_dir)), list(classes), sha256_file(target), provenance,
    )  # fmt: skip
    from tools.models import manifest

    manifest.record(
        Path(models_dir),
        manifest.Record(path=model.weights, sha256=model.sha256, size=target.stat().st_size,
                        origin="train", inputs={"snapshot": str(provenance.get("snapshot", ""))}),
    )  # fmt: skip
    for name in (f"job-{job_id}.json", "current.json"):
        with atomic_output(folder / name) as tmp:
            tmp.write_text(json.dumps(asdict(model), indent=2, default=str))
    return model


def find(models_dir: Path, model_id: str) -> TrainedModel:
    """The trained detector ``project-<pid>-yolo`` (newest) or ``project-<pid>-yolo-job<jid>``.

    Raises:
        ValueError: not a project detector id, or nothing trained under it yet.
    """
    match = ID.match(model_id)
    if match is None:
        raise ValueError(f"expected a project detector id like 'project-3-yolo', got {model_id!r}")
    pid, jid = int(match[1]), match[2]
    path = _folder(models_dir, pid) / (f"job-{jid}.json" if jid else "current.json")
    if not path.is_file():
        raise ValueError(f"no detector {model_id!r} trained yet: run `labelwright train --project ...` first")
    return TrainedModel(**json.loads(path.read_text()))


def list_trained(models_dir: Path) -> list[TrainedModel]:
    """Every registered project detector, oldest job first."""
    root = Path(models_dir) / "project"
    found = (
        [TrainedModel(**json.loads(p.read_text())) for p in root.glob("*/job-*.json")]
        if root.is_dir()
        else []
    )
    return sorted(found, key=lambda m: (m.project_id, m.job_id))


def for_classes(
    models_dir: Path, project_id: int, classes: list[str], known: Callable[[str], bool]
) -> str | None:
    """The project's detector id when it was trained on every one of ``classes`` and the stack's
    own detector cannot see at least one of them (``known`` says which it can), else None: how
    ``label`` picks it without being told."""
    try:
        model = find(models_dir, detector_id(project_id))
    except ValueError:
        return None
    if set(classes) <= set(model.classes) and not all(known(c) for c in classes):
        return detector_id(project_id)
    return None
