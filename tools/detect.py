"""``detect``: find objects by class name in one image; writes nothing unless ``save`` is set."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ops import images
from ops.filters import image_of
from ops.unit import change
from tools.backends.vocab import UnknownLabel
from tools.pipeline import ImageRef, Label, label_image, load_rgb
from tools.registry import Tool, ToolContext, ToolError, ToolResult


class DetectArgs(BaseModel):
    image: ImageRef
    labels: list[Label] = Field(
        min_length=1, max_length=20, description="Classes to look for, e.g. ['person', 'bus']."
    )
    threshold: float = Field(
        0.3, ge=0.01, le=0.99, description="Minimum detector confidence to report a box."
    )
    save: bool = Field(
        False, description="Also segment, verify and save every box as a proposed annotation (slower)."
    )


class Box(BaseModel):
    label: str
    score: float
    box: list[int]  # x1, y1, x2, y2 in pixels
    annotation_id: int | None = None


def xyxy_of(bbox: list[float]) -> list[int]:
    x, y, w, h = bbox
    return [round(x), round(y), round(x + w), round(y + h)]


class DetectResult(ToolResult):
    image_id: int
    file_name: str
    boxes: list[Box]

    def text(self) -> str:
        if not self.boxes:
            return f"image {self.image_id} ({self.file_name}): nothing found"
        rows = "; ".join(
            f"{b.label} {b.score:.2f} [{', '.join(map(str, b.box))}]"
            + (f" saved as #{b.annotation_id}" if b.annotation_id is not None else "")
            for b in self.boxes
        )
        return f"image {self.image_id} ({self.file_name}): {len(self.boxes)} found (x1,y1,x2,y2): {rows}"


def detect(ctx: ToolContext, args: DetectArgs) -> DetectResult:
    labels = [" ".join(label.split()) for label in args.labels]
    try:
        if args.save:
            with change(ctx.env, ctx.caller, "annotation.create", ctx.project_id) as unit:
                assert unit.access is not None
                unit.access.require("category.create", "detect with save (it may add classes)")
                image = image_of(unit.session, ctx.project_id, args.image)
                out = label_image(
                    unit, backends=ctx.backends, home=ctx.home, image=image, labels=labels,
                    threshold=args.threshold, tool="detect",
                )  # fmt: skip
            boxes = [
                Box(
                    label=p.label,
                    score=round(p.detector_score, 2),
                    box=xyxy_of(p.bbox),
                    annotation_id=p.annotation_id,
                )
                for p in out.proposals
            ]
        else:
            image = images.get(ctx.env, ctx.caller, ctx.project_id, args.image)
            dets = ctx.backends.detector.detect(load_rgb(ctx.home, image), labels, args.threshold)
            boxes = [
                Box(label=label, score=round(float(conf), 2), box=[round(float(v)) for v in xyxy])
                for xyxy, conf, label in zip(dets.xyxy, dets.confidence, dets.label, strict=True)
            ]
    except UnknownLabel as exc:  # the detector's vocabulary message, for the model to act on
        raise ToolError(str(exc)) from None
    boxes.sort(key=lambda b: -b.score)
    return DetectResult(image_id=image.id or 0, file_name=image.file_name, boxes=boxes)


TOOL = Tool(
    name="detect",
    description="Find objects of the given classes in one image; returns labelled boxes with scores.",
    args=DetectArgs,
    fn=detect,
)
