"""``segment``: one object from a box or click points; writes one proposed annotation.

Split in two so a surface can show a mask before anyone decides to keep it (the API's interactive
segmentation: click, look, click again): :func:`propose` runs the segmenter and writes nothing
(``ops.proposals``: it needs ``annotation.propose``), :func:`save` stores a proposal through
``ops.annotations.create``. The tool is the two in a row.

The segmenter caches the image embedding by image id, so a second prompt on the same image skips
the expensive ``set_image`` work.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator

from ops import annotations, proposals
from ops.unit import require
from store.geometry import single_polygon
from store.masks import bbox_from_rle, rle_from_mask
from store.models import Image
from tools.backends.exclusive import exclusive
from tools.click_object import object_box_at, wants_object_boxes
from tools.detect import xyxy_of
from tools.pipeline import ImageRef, Label, clip_to_box, load_rgb
from tools.registry import Tool, ToolContext, ToolError, ToolResult

_BOX = Field(
    None, min_length=4, max_length=4, description="Box around the object: [x1, y1, x2, y2] in pixels."
)
_POINTS = Field(None, min_length=1, max_length=20, description="Click points [[x, y], ...] in pixels.")
_POINT_LABELS = Field(None, description="Per point: 1 = on the object, 0 = background. Default: all 1.")
log = logging.getLogger(__name__)

_TRACK = Field(None, description="On a video frame: a track id of its video to add the object to, or 'new'.")


def _check_prompt(args: Any) -> None:
    if args.box is None and args.points is None:
        raise ValueError("give a box or points (or both)")
    if args.points is not None:
        if any(len(p) != 2 for p in args.points):
            raise ValueError(f"each point must be [x, y], got {args.points}")
        if args.point_labels is not None and len(args.point_labels) != len(args.points):
            raise ValueError(
                f"point_labels needs one value per point: {len(args.points)} points, "
                f"{len(args.point_labels)} labels"
            )
        if args.point_labels is not None and set(args.point_labels) - {0, 1}:
            raise ValueError(f"point_labels must be 0 or 1, got {args.point_labels}")
    if args.box is not None and (args.box[2] <= args.box[0] or args.box[3] <= args.box[1]):
        raise ValueError(f"box must be [x1, y1, x2, y2] with x2 > x1 and y2 > y1, got {args.box}")


class Prompt(BaseModel):
    """Where the object is: a box, click points, or both (pixels of the stored image)."""

    box: list[float] | None = _BOX
    points: list[list[float]] | None = _POINTS
    point_labels: list[int] | None = _POINT_LABELS

    @model_validator(mode="after")
    def _prompt(self) -> Prompt:
        _check_prompt(self)
        return self


class SegmentArgs(BaseModel):  # no docstring: it would enter the schema the model reads
    image: ImageRef
    label: Label
    box: list[float] | None = _BOX
    points: list[list[float]] | None = _POINTS
    point_labels: list[int] | None = _POINT_LABELS
    track: int | Literal["new"] | None = _TRACK

    @model_validator(mode="after")
    def _prompt(self) -> SegmentArgs:
        _check_prompt(self)
        return self


@dataclass(frozen=True)
class MaskProposal:
    """The segmenter's answer for one prompt, not stored anywhere yet."""

    image_id: int
    rle: dict[str, Any]  # COCO RLE, compressed counts as str
    score: float | None  # None: the segmenter gives no confidence (e.g. GrabCut)
    model: str

    def public(self) -> dict[str, Any]:
        """The API's form: RLE, one polygon (COCO flat list), score and the COCO ``[x, y, w, h]`` box."""
        polygon, fidelity = single_polygon(self.rle)
        return {
            "image_id": self.image_id,
            "rle": self.rle,
            "polygon": [round(v, 1) for v in polygon],
            "polygon_fidelity": round(fidelity, 4),
            "score": self.score,
            "bbox": bbox_from_rle(self.rle),
            "model": self.model,
        }


class SegmentResult(ToolResult):
    annotation_id: int
    image_id: int
    label: str
    box: list[int]  # x1, y1, x2, y2 of the mask
    area: int
    score: float | None  # None: the segmenter gives no confidence (e.g. GrabCut)
    track_id: int | None = None

    def text(self) -> str:
        return (
            f"saved #{self.annotation_id} {self.label} on image {self.image_id}: "
            f"box [{', '.join(map(str, self.box))}], area {self.area} px"
            + (f", score {self.score:.2f}" if self.score is not None else "")
            + " (proposed)"
            + (f" on track {self.track_id}" if self.track_id is not None else "")
        )


def _inside(xy: list[float], width: int, height: int) -> bool:
    return 0 <= xy[0] <= width and 0 <= xy[1] <= height


def click_detector(backends: Any) -> Any:
    """The stack's detector, which turns a click into the box of the object under it; None where it
    cannot load (its files are missing): the click then goes to the segmenter's own point search,
    as a click on an object the detector does not know does, instead of failing."""
    from tools.models.resolve import ModelMissing

    try:
        return getattr(backends, "detector", None)
    except ModelMissing as missing:
        log.warning("a click without object boxes: %s", missing)
        return None


def compute_mask(backends: Any, home: Path, image: Image, prompt: Prompt | SegmentArgs) -> MaskProposal:
    """The segmenter pass for ``prompt`` on ``image``; raises ToolError for a prompt off the image
    or one where the segmenter finds nothing. Writes nothing and checks no permission."""
    corners = [prompt.box[:2], prompt.box[2:]] if prompt.box else []
    outside = [xy for xy in corners + (prompt.points or []) if not _inside(xy, image.width, image.height)]
    if outside:
        raise ToolError(f"{outside} lie outside image {image.id} ({image.width}x{image.height} px)")
    segmenter = backends.segmenter
    rgb = load_rgb(home, image)
    box = None if prompt.box is None else np.asarray([prompt.box], dtype=np.float32)
    points = None if prompt.points is None else np.asarray(prompt.points, dtype=np.float32)
    labels = None
    if points is not None:
        labels = np.asarray(prompt.point_labels or [1] * len(points), dtype=np.int32)
        if box is None and wants_object_boxes(segmenter):
            found = object_box_at(click_detector(backends), rgb, points, labels, key=image.id)
            if found is not None:  # the click is inside a detected object: answer it as that box
                box, points, labels = np.asarray([found], dtype=np.float32), None, None
    with exclusive(segmenter):
        segmenter.set_image(rgb, key=image.id)
        masks, scores = segmenter.segment(boxes=box, points=points, point_labels=labels)
    mask = np.asarray(masks[0], dtype=bool)
    score = float(scores[0])
    score = None if math.isnan(score) else round(min(max(score, 0.0), 1.0), 4)  # NaN: no confidence
    if box is not None:
        mask = clip_to_box(mask, box[0])
    if not mask.any():
        raise ToolError("the segmenter found no object there; try a tighter box or more points")
    return MaskProposal(image.id or 0, rle_from_mask(mask), score, segmenter.model_id)


def propose(ctx: ToolContext, image: int | str, prompt: Prompt | SegmentArgs) -> MaskProposal:
    """A mask for ``prompt`` on ``image``, stored nowhere (needs ``annotation.propose``)."""
    return proposals.propose(
        ctx.env,
        ctx.caller,
        ctx.project_id,
        image,
        lambda row, _path: compute_mask(ctx.backends, ctx.home, row, prompt),
    )


def save(
    ctx: ToolContext, proposal: MaskProposal, label: str, *, description: str = "",
    track: int | str | None = None,
) -> SegmentResult:  # fmt: skip
    """Store ``proposal`` as a proposed annotation of class ``label`` (created if new); ``track``
    puts it on a track of the frame's video: an id, or "new" (:func:`ops.annotations.on_track`)."""
    label = " ".join(label.split())
    (ann,) = annotations.create(
        ctx.env,
        ctx.caller,
        ctx.project_id,
        image_id=proposal.image_id,
        items=[
            annotations.NewAnnotation(
                label=label, mask=proposal.rle, score=proposal.score, tool="segment",
                model=proposal.model, prompt=label, **annotations.on_track(track),
            )
        ],
        description=description or f"segment {label} on image {proposal.image_id}",
    )  # fmt: skip
    return SegmentResult(
        annotation_id=ann.id or 0,
        image_id=proposal.image_id,
        label=label,
        box=xyxy_of(list(ann.bbox)),
        area=int(ann.area),
        score=proposal.score,
        track_id=ann.track_id,
    )


def segment(ctx: ToolContext, args: SegmentArgs) -> SegmentResult:
    require(
        ctx.env, ctx.caller, ctx.project_id, "annotation.create", "category.create"
    )  # before the model runs
    return save(ctx, propose(ctx, args.image, args), args.label, track=args.track)


TOOL = Tool(
    name="segment",
    description="Outline one object from a box or click points; saves it as a proposed annotation.",
    args=SegmentArgs,
    fn=segment,
    mutates=True,
)
