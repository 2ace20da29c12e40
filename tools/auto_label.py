"""``auto_label``: label many images in a background job, and the handler that runs that job.

The tool only checks its arguments and enqueues; the job runner calls :class:`LabelJob` once per
image, inside the transaction that also advances the job's cursor.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from store.db import new_session
from store.models import Annotation, Image, Job
from tools.backends.vocab import UnknownLabel
from tools.pipeline import ImageRef, Label, label_image, resolve_image
from tools.registry import Tool, ToolContext, ToolError, ToolResult

KIND = "auto_label"


class AutoLabelArgs(BaseModel):
    classes: list[Label] = Field(
        min_length=1, max_length=20, description="Classes to label, e.g. ['person', 'bus']."
    )
    images: list[ImageRef] | None = Field(
        None, description="Image ids or file names; omit to label every image in the project."
    )
    threshold: float = Field(0.3, ge=0.01, le=0.99, description="Minimum detector confidence to keep a box.")


class AutoLabelResult(ToolResult):
    job_id: int
    images: int
    classes: list[str]

    def text(self) -> str:
        return f"started job {self.job_id}: labeling {', '.join(self.classes)} on {self.images} images"


def clean_labels(labels: list[str]) -> list[str]:
    return list(dict.fromkeys(" ".join(label.split()) for label in labels))


def check_labels(detector: Any, labels: list[str]) -> None:
    """Ask the detector itself whether it can look for ``labels`` (on a blank image: cheap)."""
    try:
        detector.detect(np.zeros((32, 32, 3), dtype=np.uint8), labels, 0.99)
    except UnknownLabel as exc:
        raise ToolError(str(exc)) from None


def job_params(
    session: Session, *, project_id: int, classes: list[str], images: list[int | str] | None, threshold: float
) -> dict[str, Any]:
    """The job's params: image ids resolved now, so the cursor indexes a fixed list."""
    if images is None:
        ids = list(
            session.exec(select(Image.id).where(Image.project_id == project_id).order_by(col(Image.id)))
        )
    else:
        ids = list(dict.fromkeys(resolve_image(session, project_id=project_id, ref=ref).id for ref in images))
    if not ids:
        raise ToolError("the project has no images to label; ingest some first")
    return {"classes": clean_labels(classes), "image_ids": ids, "threshold": threshold}


def auto_label(ctx: ToolContext, args: AutoLabelArgs) -> AutoLabelResult:
    if ctx.enqueue is None:
        raise ToolError("background jobs are not available in this session")
    classes = clean_labels(args.classes)
    check_labels(ctx.backends.detector, classes)
    with new_session(ctx.engine) as session:
        params = job_params(
            session, project_id=ctx.project_id, classes=classes, images=args.images, threshold=args.threshold
        )
    if ctx.agent_run_id is not None:
        params["agent_run_id"] = ctx.agent_run_id
    job_id = ctx.enqueue(KIND, params)
    return AutoLabelResult(job_id=job_id, images=len(params["image_ids"]), classes=classes)


class LabelJob:
    """Job handler: item ``i`` is image ``params['image_ids'][i]``.

    An image that already has this job's annotations is skipped: with the cursor committed in the
    same transaction this cannot happen after a crash, and the check makes a rerun of an item
    harmless even if a future executor delivers it twice.
    """

    def __init__(
        self, *, home: Path, backends_factory: Callable[[], Any], author: str = "auto_label"
    ) -> None:
        self.home = home
        self.backends_factory = backends_factory
        self.author = author
        self._backends: Any = None
        self.last: Any = None  # the last ImageResult, for timing reports

    @property
    def backends(self) -> Any:
        if self._backends is None:
            self._backends = self.backends_factory()
        return self._backends

    def total(self, params: dict[str, Any]) -> int:
        return len(params["image_ids"])

    def process(self, session: Session, job: Job, index: int) -> None:
        image = session.get(Image, job.params["image_ids"][index])
        if image is None:  # deleted since the job was queued
            return
        done = session.exec(
            select(Annotation.id).where(Annotation.job_id == job.id, Annotation.image_id == image.id).limit(1)
        ).first()
        if done is not None:
            return
        self.last = label_image(
            session,
            backends=self.backends,
            home=self.home,
            image=image,
            labels=job.params["classes"],
            threshold=float(job.params["threshold"]),
            job_id=job.id,
            agent_run_id=job.params.get("agent_run_id"),
            author=self.author,
            tool=KIND,
        )


TOOL = Tool(
    name="auto_label",
    description="Label classes on many images (default: all) in a background job; returns the job id.",
    args=AutoLabelArgs,
    fn=auto_label,
    mutates=True,
)
