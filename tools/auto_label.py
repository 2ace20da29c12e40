"""``auto_label``: label many images in a background job, and the handler that runs that job.

The tool starts the job through ``ops.jobs.start_label`` (the one set of checks every surface
uses); the job runner calls :class:`LabelJob` once per image, inside the transaction that also
advances the job's cursor, writing as the person who started the job.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field
from sqlmodel import Session, select

from ops import jobs
from ops.caller import Caller
from ops.unit import within
from store.models import Annotation, Image, Job
from tools.backends.vocab import UnknownLabel
from tools.pipeline import ImageRef, Label, label_image
from tools.registry import Tool, ToolContext, ToolResult

KIND = jobs.LABEL


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
    """Ask the detector itself whether it can look for ``labels`` (on a blank image: cheap).

    Raises ValueError (the operation turns it into a refusal) naming what it can detect.
    """
    try:
        detector.detect(np.zeros((32, 32, 3), dtype=np.uint8), labels, 0.99)
    except UnknownLabel as exc:
        raise ValueError(str(exc)) from None


def label_check(backends_factory: Callable[[], Any] | None) -> Callable[[list[str]], None] | None:
    """The vocabulary check of the process's detector, for ``ops.jobs.start_label``."""
    if backends_factory is None:
        return None
    return lambda labels: check_labels(backends_factory().detector, labels)


def auto_label(ctx: ToolContext, args: AutoLabelArgs) -> AutoLabelResult:
    check = label_check(lambda: ctx.backends) if ctx.backends_factory is not None else None
    job = jobs.start_label(
        ctx.env, ctx.caller, ctx.project_id, classes=args.classes, images=args.images,
        threshold=args.threshold, check=check,
    )  # fmt: skip
    if ctx.on_job is not None:
        ctx.on_job(job.id)
    return AutoLabelResult(job_id=job.id, images=job.total, classes=job.params["classes"])


def job_caller(job: Job) -> Caller:
    """Who a job acts for: the person who started it, through the job runner."""
    name = str(job.params.get("requested_by") or KIND)
    return Caller(name, None, False, via="job", agent_run_id=job.params.get("agent_run_id"))


class LabelJob:
    """Job handler: item ``i`` is image ``params['image_ids'][i]``.

    An image that already has this job's annotations is skipped: with the cursor committed in the
    same transaction this cannot happen after a crash, and the check makes a rerun of an item
    harmless even if a future executor delivers it twice.
    """

    def __init__(self, *, home: Path, backends_factory: Callable[[], Any]) -> None:
        self.home = home
        self.backends_factory = backends_factory
        self._backends: Any = None
        self.last: Any = None  # the last ImageResult, for timing reports

    @property
    def backends(self) -> Any:
        if self._backends is None:
            self._backends = self.backends_factory()
        return self._backends

    def total(self, params: dict[str, Any]) -> int:
        return len(params["image_ids"])

    def check_labels(self, labels: list[str]) -> None:
        """ValueError naming what this handler's detector can find, when it cannot find ``labels``."""
        check_labels(self.backends.detector, labels)

    def close(self) -> None:
        """Nothing to release in-process (the Ray handler stops its actors here)."""

    def todo(self, session: Session, job: Job, index: int) -> Image | None:
        """Item ``index``'s image, or None where there is nothing to do: the image was deleted
        since the job was queued, or this job already wrote it."""
        image = session.get(Image, job.params["image_ids"][index])
        if image is None:
            return None
        done = session.exec(
            select(Annotation.id).where(Annotation.job_id == job.id, Annotation.image_id == image.id).limit(1)
        ).first()
        return None if done is not None else image

    def process(self, session: Session, job: Job, index: int) -> None:
        image = self.todo(session, job, index)
        if image is None:
            return
        with within(session, job_caller(job), job.project_id) as unit:
            self.last = label_image(
                unit,
                backends=self.backends,
                home=self.home,
                image=image,
                labels=job.params["classes"],
                threshold=float(job.params["threshold"]),
                job_id=job.id,
                tool=KIND,
            )


TOOL = Tool(
    name="auto_label",
    description="Label classes on many images (default: all) in a background job; returns the job id.",
    args=AutoLabelArgs,
    fn=auto_label,
    mutates=True,
)
