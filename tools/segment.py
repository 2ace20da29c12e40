"""``segment``: one object from a box or click points; writes one proposed annotation.

The segmenter caches the image embedding by image id, so a second prompt on the same image (the
interactive loop: click, look, click again) skips the expensive ``set_image`` work.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, Field, model_validator

from ops import annotations, images
from ops.unit import require
from store.masks import rle_from_mask
from tools.detect import xyxy_of
from tools.pipeline import ImageRef, Label, clip_to_box, load_rgb
from tools.registry import Tool, ToolContext, ToolError, ToolResult


class SegmentArgs(BaseModel):
    image: ImageRef
    label: Label
    box: list[float] | None = Field(
        None, min_length=4, max_length=4, description="Box around the object: [x1, y1, x2, y2] in pixels."
    )
    points: list[list[float]] | None = Field(
        None, min_length=1, max_length=20, description="Click points [[x, y], ...] in pixels."
    )
    point_labels: list[int] | None = Field(
        None, description="Per point: 1 = on the object, 0 = background. Default: all 1."
    )

    @model_validator(mode="after")
    def _prompt(self) -> SegmentArgs:
        if self.box is None and self.points is None:
            raise ValueError("give a box or points (or both)")
        if self.points is not None:
            if any(len(p) != 2 for p in self.points):
                raise ValueError(f"each point must be [x, y], got {self.points}")
            if self.point_labels is not None and len(self.point_labels) != len(self.points):
                raise ValueError(
                    f"point_labels needs one value per point: {len(self.points)} points, "
                    f"{len(self.point_labels)} labels"
                )
            if self.point_labels is not None and set(self.point_labels) - {0, 1}:
                raise ValueError(f"point_labels must be 0 or 1, got {self.point_labels}")
        if self.box is not None and (self.box[2] <= self.box[0] or self.box[3] <= self.box[1]):
            raise ValueError(f"box must be [x1, y1, x2, y2] with x2 > x1 and y2 > y1, got {self.box}")
        return self


class SegmentResult(ToolResult):
    annotation_id: int
    image_id: int
    label: str
    box: list[int]  # x1, y1, x2, y2 of the mask
    area: int
    score: float | None  # None: the segmenter gives no confidence (e.g. GrabCut)

    def text(self) -> str:
        return (
            f"saved #{self.annotation_id} {self.label} on image {self.image_id}: "
            f"box [{', '.join(map(str, self.box))}], area {self.area} px"
            + (f", score {self.score:.2f}" if self.score is not None else "")
            + " (proposed)"
        )


def _inside(xy: list[float], width: int, height: int) -> bool:
    return 0 <= xy[0] <= width and 0 <= xy[1] <= height


def segment(ctx: ToolContext, args: SegmentArgs) -> SegmentResult:
    label = " ".join(args.label.split())
    require(
        ctx.env, ctx.caller, ctx.project_id, "annotation.create", "category.create"
    )  # before the model runs
    image, path = images.file_path(ctx.env, ctx.caller, ctx.project_id, args.image)
    corners = [args.box[:2], args.box[2:]] if args.box else []
    outside = [xy for xy in corners + (args.points or []) if not _inside(xy, image.width, image.height)]
    if outside:
        raise ToolError(f"{outside} lie outside image {image.id} ({image.width}x{image.height} px)")
    segmenter = ctx.backends.segmenter
    segmenter.set_image(load_rgb(ctx.home, image), key=image.id)
    box = None if args.box is None else np.asarray([args.box], dtype=np.float32)
    points = None if args.points is None else np.asarray(args.points, dtype=np.float32)
    labels = None
    if points is not None:
        labels = np.asarray(args.point_labels or [1] * len(points), dtype=np.int32)
    masks, scores = segmenter.segment(boxes=box, points=points, point_labels=labels)
    mask = np.asarray(masks[0], dtype=bool)
    score = float(scores[0])
    score = None if math.isnan(score) else round(min(max(score, 0.0), 1.0), 4)  # NaN: no confidence
    if box is not None:
        mask = clip_to_box(mask, box[0])
    if not mask.any():
        raise ToolError("the segmenter found no object there; try a tighter box or more points")
    (ann,) = annotations.create(
        ctx.env,
        ctx.caller,
        ctx.project_id,
        image_id=image.id or 0,
        items=[
            annotations.NewAnnotation(
                label=label, mask=rle_from_mask(mask), score=score, tool="segment",
                model=segmenter.model_id, prompt=label,
            )
        ],
        description=f"segment {label} on {image.file_name}",
    )  # fmt: skip
    return SegmentResult(
        annotation_id=ann.id or 0,
        image_id=image.id or 0,
        label=label,
        box=xyxy_of(list(ann.bbox)),
        area=int(ann.area),
        score=score,
    )


TOOL = Tool(
    name="segment",
    description="Outline one object from a box or click points; saves it as a proposed annotation.",
    args=SegmentArgs,
    fn=segment,
    mutates=True,
)
