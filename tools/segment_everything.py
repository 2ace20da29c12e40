"""``segment_everything``: propose masks for every object in an image.

Both stacks do it the same way: detect all 80 COCO classes, then segment each box (one
``set_image`` for the whole image). A SAM-style grid of point prompts with NMS would also find
unnamed regions (wall, sky), but those carry no class, and every annotation here needs one; the
detector's classes are the ones a reviewer can accept or relabel.
"""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel, Field

from ops.filters import image_of
from ops.unit import change
from tools.backends.vocab import COCO80
from tools.pipeline import ImageRef, label_image
from tools.registry import Tool, ToolContext, ToolResult


class SegmentEverythingArgs(BaseModel):
    image: ImageRef
    threshold: float = Field(0.4, ge=0.05, le=0.99, description="Minimum detector confidence for an object.")


class SegmentEverythingResult(ToolResult):
    image_id: int
    annotation_ids: list[int]
    counts: dict[str, int]

    def text(self) -> str:
        if not self.annotation_ids:
            return f"image {self.image_id}: no objects found"
        found = ", ".join(f"{n} {label}" for label, n in sorted(self.counts.items(), key=lambda kv: -kv[1]))
        ids = ", ".join(f"#{i}" for i in self.annotation_ids[:30])
        more = f" (+{len(self.annotation_ids) - 30} more)" if len(self.annotation_ids) > 30 else ""
        return f"image {self.image_id}: saved {len(self.annotation_ids)} proposed ({found}): {ids}{more}"


def segment_everything(ctx: ToolContext, args: SegmentEverythingArgs) -> SegmentEverythingResult:
    with change(ctx.env, ctx.caller, "annotation.create", ctx.project_id) as unit:
        assert unit.access is not None
        unit.access.require("category.create", "segment_everything (it may add classes)")
        image = image_of(unit.session, ctx.project_id, args.image)
        out = label_image(
            unit,
            backends=ctx.backends,
            home=ctx.home,
            image=image,
            labels=list(COCO80),
            threshold=args.threshold,
            tool="segment_everything",
        )
    return SegmentEverythingResult(
        image_id=image.id or 0,
        annotation_ids=[p.annotation_id for p in out.proposals],
        counts=dict(Counter(p.label for p in out.proposals)),
    )


TOOL = Tool(
    name="segment_everything",
    description="Find and outline every common object (80 COCO classes) in one image; saves proposals.",
    args=SegmentEverythingArgs,
    fn=segment_everything,
    mutates=True,
)
