"""Training a detector on a project's accepted labels: the checks and the job, once for every
surface. The training itself (export, ultralytics, registration) is the ``train`` job's handler
in ``tools/training.py``; one epoch is one item, so the job cancels between epochs and resumes
from its last checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from ops.caller import Caller
from ops.errors import Invalid
from ops.jobs import JobInfo, queue
from ops.unit import Env, change
from store.models import Annotation, AnnotationStatus, Category

TRAIN = "train"
MIN_IMAGES = 8  # accepted-labelled images: fewer leave nothing to hold out and learn from
MAX_EPOCHS = 1000


def start_train(
    env: Env, caller: Caller | None, project_id: int, *, epochs: int = 50, base: str = "yolov8n.yaml",
    imgsz: int = 640, holdout: float = 0.2, seed: int = 0, extra: dict[str, Any] | None = None,
) -> JobInfo:  # fmt: skip
    """Queue a ``train`` job: ``epochs`` epochs of ``base`` (a model yaml, random init, or a .pt the
    user imported) on the accepted labels, ``holdout`` of the labelled images held out for mAP."""
    if not 1 <= int(epochs) <= MAX_EPOCHS:
        raise Invalid(f"epochs must be in [1, {MAX_EPOCHS}], got {epochs!r}")
    if int(imgsz) < 32 or int(imgsz) % 32:
        raise Invalid(f"imgsz must be a positive multiple of 32, got {imgsz!r}")
    if not 0.05 <= float(holdout) <= 0.5:
        raise Invalid(f"holdout must be in [0.05, 0.5], got {holdout!r}")
    if not str(base).endswith((".yaml", ".yml", ".pt")):
        raise Invalid(f"base must be a model yaml (e.g. yolov8n.yaml) or a .pt file, got {base!r}")
    if (
        str(base).endswith(".pt") and not Path(base).expanduser().is_file()
    ):  # else ultralytics would download it
        raise Invalid(f"base {base!r} is not a file here: give the path of weights you imported")
    with change(env, caller, "model.train", project_id) as unit:
        rows = unit.session.exec(
            select(Category.name, func.count(func.distinct(Annotation.image_id)))
            .join(Category, col(Category.id) == col(Annotation.category_id))
            .where(Annotation.project_id == project_id, Annotation.status == AnnotationStatus.accepted)
            .group_by(Category.name)
        ).all()
        labelled = unit.session.exec(
            select(func.count(func.distinct(Annotation.image_id))).where(
                Annotation.project_id == project_id, Annotation.status == AnnotationStatus.accepted
            )
        ).one()
        if labelled < MIN_IMAGES:
            raise Invalid(
                f"training needs accepted labels on at least {MIN_IMAGES} images, got {labelled}; "
                "review (accept) more proposals first"
            )
        params: dict[str, Any] = {
            "epochs": int(epochs),
            "base": str(Path(base).expanduser().resolve()) if str(base).endswith(".pt") else base,
            "imgsz": int(imgsz), "holdout": float(holdout),
            "seed": int(seed), "classes": sorted(name for name, _n in rows), **(extra or {}),
        }  # fmt: skip
        return queue(unit, TRAIN, params, int(epochs))
