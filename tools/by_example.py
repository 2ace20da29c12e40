"""``label_by_example``: a person boxes one to five examples of a class no model knows; similar
regions in the other images become proposals of that class, for review.

The examples are the class's annotations a person drew (no score), newest first. The tool starts an
ordinary ``auto_label`` job (``ops.jobs.start_label``) whose params name the example annotations;
its handler builds an :class:`~tools.backends.by_example.ExampleDetector` from them
(:func:`example_detector`) and segments and writes each found region like any detection, so
review, calibration (per model: ``by-example+...``) and undo treat them like other proposals.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from ops import jobs
from ops.filters import category_of
from ops.unit import read
from store.categories import get_category
from store.models import Annotation, AnnotationStatus, Image
from tools.auto_label import AutoLabelResult
from tools.backends.by_example import ExampleDetector, crop_xywh, iou, window_sizes, windows
from tools.label_trained import unlabelled
from tools.pipeline import ImageRef, Label, load_rgb
from tools.registry import Tool, ToolContext, ToolError

MAX_EXAMPLES = 5
BACKGROUND = 120  # non-object windows sampled from the example images
BACKGROUND_IOU = 0.1  # a window overlapping an example less than this is background


class ByExampleArgs(BaseModel):
    label: Label = Field(description="The class whose boxed examples to look for, e.g. 'crack'.")
    images: list[ImageRef] | None = Field(
        None, description="Image ids or file names (default: the images without that class)."
    )
    threshold: float = Field(0.3, ge=0.01, le=0.99, description="0: like the background; 1: like an example.")


class ByExampleResult(AutoLabelResult):
    examples: list[int]

    def text(self) -> str:
        shown = ", ".join(f"#{i}" for i in self.examples)
        return f"{super().text()} by example ({len(self.examples)} examples: {shown})"


def examples_of(session: Session, project_id: int, category_id: int) -> list[int]:
    """Ids of up to ``MAX_EXAMPLES`` boxes of the class a person drew (no score), newest first."""
    rows = session.exec(
        select(Annotation.id).where(
            Annotation.project_id == project_id, Annotation.category_id == category_id,
            col(Annotation.score).is_(None), Annotation.status != AnnotationStatus.rejected,
        ).order_by(col(Annotation.id).desc()).limit(MAX_EXAMPLES)
    ).all()  # fmt: skip
    return [int(i) for i in rows if i is not None]


def label_by_example(ctx: ToolContext, args: ByExampleArgs) -> ByExampleResult:
    with read(ctx.env, ctx.caller, "annotation.read", ctx.project_id) as unit:
        category = category_of(unit.session, ctx.project_id, args.label)
        ids = examples_of(unit.session, ctx.project_id, category.id or 0)
    if not ids:
        raise ToolError(f"box one to {MAX_EXAMPLES} examples of {category.name!r} first (draw them by hand)")
    refs = args.images if args.images else unlabelled(ctx, label=category.name)
    if not refs:
        raise ToolError(f"every image has {category.name!r} annotations already; name the images to search")
    job = jobs.start_label(
        ctx.env, ctx.caller, ctx.project_id, classes=[category.name], images=refs, threshold=args.threshold,
        extra={"examples": ids},
    )  # fmt: skip
    if ctx.on_job is not None:
        ctx.on_job(job.id)
    return ByExampleResult(job_id=job.id, images=job.total, classes=job.params["classes"], examples=ids)


def example_detector(
    session: Session, home: Path, embedder: Any, project_id: int, ids: list[int]
) -> ExampleDetector:
    """The detector of a ``label_by_example`` job: its example crops, and background windows of the
    example images (the similarity a non-object reaches)."""
    if not callable(getattr(embedder, "embed", None)):
        raise ValueError("label by example needs a verifier that embeds crops (lite-efficientnet)")
    by_image: dict[int, list[Annotation]] = defaultdict(list)
    for ann_id in ids:
        ann = session.get(Annotation, ann_id)
        if ann is not None and ann.project_id == project_id:
            by_image[ann.image_id].append(ann)
    if not by_image:
        raise ValueError(f"the example annotations {ids} are gone; box new examples")
    examples: dict[str, list[np.ndarray]] = defaultdict(list)
    background: list[np.ndarray] = []
    rng = np.random.default_rng(0)
    for image_id, anns in by_image.items():
        image = session.get(Image, image_id)
        assert image is not None
        rgb = load_rgb(home, image)
        boxes = np.asarray(
            [[a.bbox[0], a.bbox[1], a.bbox[0] + a.bbox[2], a.bbox[1] + a.bbox[3]] for a in anns]
        )
        for ann in anns:
            category = get_category(session, category_id=ann.category_id)
            examples[category.name if category else "?"].append(crop_xywh(rgb, ann.bbox))
        sizes = window_sizes([(int(a.bbox[3]), int(a.bbox[2])) for a in anns])
        free = [w for w in windows(rgb.shape, sizes) if iou(w, boxes).max() < BACKGROUND_IOU]
        for k in rng.permutation(len(free))[: BACKGROUND // len(by_image)]:
            x1, y1, x2, y2 = (int(v) for v in free[k])
            background.append(rgb[y1:y2, x1:x2])
    return ExampleDetector(embedder, dict(examples), background)


TOOL = Tool(
    name="label_by_example",
    description="Find regions like the boxes a person drew of a class, in the other images (a job).",
    args=ByExampleArgs,
    fn=label_by_example,
    mutates=True,
)
