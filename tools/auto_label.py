"""``auto_label``: label many images in a background job, and the handler that runs that job.

The tool starts the job through ``ops.jobs.start_label`` (the one set of checks every surface
uses); the job runner calls :class:`LabelJob` once per image, inside the transaction that also
advances the job's cursor, writing as the person who started the job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, Field
from sqlmodel import Session, select

from ops import categories, jobs
from ops.caller import Caller
from ops.unit import within
from store.models import Annotation, Image, Job
from tools.backends.vocab import UnknownLabel
from tools.lazy_models import ModelsOnFirstUse
from tools.pipeline import ImageRef, Label, label_image
from tools.registry import From, Source, Tool, ToolContext, ToolError, ToolResult

KIND = jobs.LABEL


class AutoLabelArgs(BaseModel):
    classes: Annotated[list[Label], From(Source.CLASSES)] = Field(
        min_length=1, max_length=20, description="Classes to label, e.g. ['person', 'bus']."
    )
    images: Annotated[list[ImageRef] | None, From(Source.IMAGE)] = Field(
        None, description="Image ids or file names; omit to label every image in the project."
    )
    threshold: Annotated[float, From(Source.THRESHOLD)] = Field(
        0.3, ge=0.01, le=0.99, description="Minimum detector confidence to keep a box."
    )
    videos: list[int | str] | None = Field(
        None, description="Video ids or file names to label as tracks (a project of only videos: all)."
    )


class AutoLabelResult(ToolResult):
    job_id: int
    images: int
    classes: list[str]
    videos: int = 0  # a tracking job over the frames of this many videos

    def text(self) -> str:
        where = (
            f"{self.images} frames of {self.videos} videos (as tracks)"
            if self.videos
            else f"{self.images} images"
        )
        return f"started job {self.job_id}: labeling {', '.join(self.classes)} on {where}"


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
    """Start the job, and add the classes the project does not have yet (through
    ``ops.categories``): "find the bicycle and label it" names a class nobody created, and the
    person expects it in the class list even where the detector finds none."""
    check = label_check(lambda: ctx.backends) if ctx.backends_factory is not None else None
    # A project of only videos labels them as tracks (video=None picks that); named videos do too.
    chosen = _video_ids(ctx, args.videos) if args.videos else None
    video = True if chosen else (False if args.images is not None else None)
    job = jobs.start_label(
        ctx.env, ctx.caller, ctx.project_id, classes=args.classes, images=args.images,
        threshold=args.threshold, check=check, video=video, videos=chosen,
    )  # fmt: skip
    categories.ensure(ctx.env, ctx.caller, ctx.project_id, job.params["classes"])
    if ctx.on_job is not None:
        ctx.on_job(job.id)
    return AutoLabelResult(
        job_id=job.id,
        images=job.total,
        classes=job.params["classes"],
        videos=len(job.params.get("video_ids", [])),
    )


def _video_ids(ctx: ToolContext, refs: list[int | str]) -> list[int]:
    """Video ids for ids or file names of the project's videos (ToolError names the videos)."""
    from ops import videos

    found = videos.list_videos(ctx.env, ctx.caller, ctx.project_id)
    by_ref = {str(v.id): v.id for v in found} | {v.file_name: v.id for v in found}
    missing = [r for r in refs if str(r) not in by_ref]
    if missing:
        have = ", ".join(f"{v.id}:{v.file_name!r}" for v in found[:10]) or "none"
        raise ToolError(f"no video {missing[0]!r} in this project; videos (id:file_name): {have}")
    return list(dict.fromkeys(by_ref[str(r)] for r in refs))


def job_caller(job: Job) -> Caller:
    """Who a job acts for: the person who started it, through the job runner."""
    name = str(job.params.get("requested_by") or KIND)
    return Caller(name, None, False, via="job", agent_run_id=job.params.get("agent_run_id"))


@dataclass(frozen=True)
class WithDetector:
    """Backends with their detector swapped; the segmenter and verifier stay the shared ones."""

    base: Any
    detector: Any

    @property
    def segmenter(self) -> Any:
        return self.base.segmenter

    @property
    def verifier(self) -> Any:
        return getattr(self.base, "verifier", None)


def with_detector(base: Any, wanted: str | None, built: dict[str, Any]) -> Any:
    """``base`` with the detector a job names (``params['detector']``, e.g. a project's trained
    ``project-3-yolo-job7``) when that is not the stack's own, built once into ``built``."""
    if not wanted or getattr(base, "ids", {}).get("detector") == wanted:
        return base
    if wanted not in built:
        from tools.backends.stacks import model

        models_dir = getattr(base, "models_dir", None)
        if models_dir is None:
            raise ValueError(f"this model stack cannot build the job's detector {wanted!r}")
        _role, build = model(str(wanted))
        built[wanted] = build(models_dir, **getattr(base, "options", {}))
    return WithDetector(base, built[wanted])


class LabelJob(ModelsOnFirstUse):
    """Job handler: item ``i`` is image ``params['image_ids'][i]``.

    An image that already has this job's annotations is skipped: with the cursor committed in the
    same transaction this cannot happen after a crash, and the check makes a rerun of an item
    harmless even if a future executor delivers it twice.
    """

    def __init__(self, *, home: Path, backends_factory: Callable[[], Any]) -> None:
        super().__init__(home=home, backends_factory=backends_factory)
        self._detectors: dict[str, Any] = {}  # a job's own detector (params['detector']), by model id
        self.last: Any = None  # the last ImageResult, for timing reports

    def backends_for(self, job: Job, session: Session) -> Any:
        """The process's backends, with the detector the job names (``params['detector']``, e.g.
        a project's trained ``project-3-yolo-job7``) when that is not the stack's own: the agent's
        "label the rest with the detector trained on this project" runs in the server's runner.
        A job with ``params['examples']`` (``label_by_example``) looks for regions like those."""
        base, wanted = self.backends, job.params.get("detector")
        if job.params.get("examples"):
            key = f"examples:{job.id}"
            if key not in self._detectors:
                from tools.by_example import example_detector

                self._detectors[key] = example_detector(
                    session,
                    self.home,
                    getattr(base, "verifier", None),
                    job.project_id,
                    job.params["examples"],
                )
            return WithDetector(base, self._detectors[key])
        return with_detector(base, wanted, self._detectors)

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
                backends=self.backends_for(job, session),
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
