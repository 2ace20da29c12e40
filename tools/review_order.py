"""``hardest_proposals``: the review agent's "show me the hardest ones": the proposals most likely
wrong first (``ops.review_order``), each with why, so the person can accept, reject or fix them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ops import review_order
from tools.registry import Tool, ToolContext, ToolResult


class HardestArgs(BaseModel):
    limit: int = Field(5, ge=1, le=20, description="How many to show.")
    label: str | None = Field(None, max_length=64, description="Only this class, e.g. 'car'.")
    by: Literal["annotation", "image"] = Field("annotation", description="Proposals, or whole images.")
    focus: Literal["errors", "boundary"] = Field(
        "errors", description="errors: most likely wrong first; boundary: the closest calls first."
    )


class HardestResult(ToolResult):
    items: list[dict]

    def text(self) -> str:
        if not self.items:
            return "no proposals wait for review"
        return "\n".join(
            f"#{i['annotation_id']} {i['label']} on {i['file_name']}: p(wrong) {i['p_wrong']:.2f}"
            + (
                f", {', '.join(r for r in i['reasons'] if r.startswith('finding'))}"
                if i["finding_ids"]
                else ""
            )
            for i in self.items
        )


def hardest(ctx: ToolContext, args: HardestArgs) -> HardestResult:
    items = review_order.queue(
        ctx.env, ctx.caller, ctx.project_id, limit=args.limit, labels=[args.label] if args.label else None,
        by=args.by, focus=args.focus,
    )  # fmt: skip
    keep = ("annotation_id", "image_id", "file_name", "label", "score", "p_wrong", "reasons", "finding_ids")
    return HardestResult(items=[{k: getattr(i, k) for k in keep} for i in items])


TOOL = Tool(
    name="hardest_proposals",
    description="The proposals most worth reviewing first (most likely wrong), with why.",
    args=HardestArgs,
    fn=hardest,
)
