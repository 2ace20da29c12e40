"""``label_with_project_detector``: "label the rest with the detector trained on this project".

The project's newest trained detector (``labelwright train``, ``tools.models.trained``) labels the
images nobody has labelled yet (or the ones named) in an ordinary ``auto_label`` job, started
through ``ops.jobs.start_label`` with the detector's exact version in the job's params, so the
job's handler (``tools.auto_label.LabelJob.backends_for``) uses it whichever stack the process
runs, a resume uses the same weights, and every proposal's provenance names them.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from ops import images, jobs
from tools.auto_label import AutoLabelResult, clean_labels
from tools.models.trained import TrainedModel, detector_id, find
from tools.pipeline import ImageRef, Label
from tools.registry import Tool, ToolContext, ToolError

PAGE = 1000  # images read per page when collecting the unlabelled ones


class LabelTrainedArgs(BaseModel):
    classes: list[Label] | None = Field(
        None, max_length=20, description="Classes to label (default: every class it was trained on)."
    )
    images: list[ImageRef] | None = Field(
        None, description="Image ids or file names (default: the images with no annotations yet)."
    )
    threshold: float = Field(0.25, ge=0.01, le=0.99, description="Minimum detector confidence.")


class LabelTrainedResult(AutoLabelResult):
    detector: str

    def text(self) -> str:
        return f"{super().text()} with {self.detector} (trained on this project)"


def project_detector(ctx: ToolContext) -> TrainedModel:
    """The project's newest trained detector; a ToolError saying how to get one when there is none."""
    try:
        return find(ctx.models_dir, detector_id(ctx.project_id))
    except ValueError:
        raise ToolError(
            "no detector has been trained on this project yet: accept some labels, then ask to train one"
        ) from None


def unlabelled(ctx: ToolContext, label: str | None = None) -> list[int]:
    """Ids of the project's images without any annotation (of ``label``), in id order."""
    out: list[int] = []
    while True:
        rows, total = images.list_(
            ctx.env, ctx.caller, ctx.project_id, class_name=label, without_annotations=True, offset=len(out),
            limit=PAGE,
        )  # fmt: skip
        out += [r.id or 0 for r in rows]
        if not rows or len(out) >= total:
            return out


def label_trained(ctx: ToolContext, args: LabelTrainedArgs) -> LabelTrainedResult:
    model = project_detector(ctx)
    classes = clean_labels(args.classes or model.classes)
    unknown = [c for c in classes if c not in model.classes]
    if unknown:
        raise ToolError(
            f"{model.model_id} was trained on {', '.join(model.classes)} only, not {', '.join(unknown)}"
        )
    refs = args.images if args.images else unlabelled(ctx)
    if not refs:
        raise ToolError("every image has annotations already; name the images to label them again")
    job = jobs.start_label(
        ctx.env, ctx.caller, ctx.project_id, classes=classes, images=refs, threshold=args.threshold,
        extra={"detector": model.model_id},
    )  # fmt: skip
    if ctx.on_job is not None:
        ctx.on_job(job.id)
    return LabelTrainedResult(
        job_id=job.id, images=job.total, classes=job.params["classes"], detector=model.model_id
    )


TOOL = Tool(
    name="label_with_project_detector",
    description="Label images (default: the unlabelled ones) with the detector trained on this project.",
    args=LabelTrainedArgs,
    fn=label_trained,
    mutates=True,
)
