"""``count``: annotation counts from the store, grouped by class, image or status (one SQL query)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from ops import annotations
from store.models import AnnotationStatus
from tools.pipeline import ImageRef, Label
from tools.registry import From, Source, Tool, ToolContext, ToolResult

TOP = 50  # groups listed in the text; the total always counts everything


class CountArgs(BaseModel):
    by: Literal["class", "image", "status"] = Field("class", description="How to group the counts.")
    label: Annotated[Label | None, From(Source.CLASS)] = Field(None, description="Only this class.")
    image: Annotated[ImageRef | None, From(Source.IMAGE)] = Field(None, description="Only this image.")
    status: Annotated[AnnotationStatus | None, From(Source.STATUS)] = Field(
        None, description="Only annotations with this review status."
    )
    min_score: Annotated[float | None, From(Source.MIN_SCORE)] = Field(
        None, ge=0, le=1, description="Only annotations scoring at least this."
    )
    max_score: Annotated[float | None, From(Source.MAX_SCORE)] = Field(
        None, ge=0, le=1, description="Only annotations scoring at most this."
    )


class CountResult(ToolResult):
    by: str
    total: int
    groups: dict[str, int]

    def text(self) -> str:
        shown = list(self.groups.items())[:TOP]
        more = f", ... ({len(self.groups) - TOP} more groups)" if len(self.groups) > TOP else ""
        parts = ", ".join(f"{k}: {v}" for k, v in shown)
        return f"{self.total} annotations" + (f" by {self.by}: {parts}{more}" if shown else "")


def count(ctx: ToolContext, args: CountArgs) -> CountResult:
    groups = annotations.count(
        ctx.env, ctx.caller, ctx.project_id, by=args.by, label=args.label,
        images=None if args.image is None else [args.image], status=args.status,
        min_score=args.min_score, max_score=args.max_score,
    )  # fmt: skip
    return CountResult(by=args.by, total=sum(groups.values()), groups=groups)


TOOL = Tool(
    name="count",
    description="Count annotations, grouped by class, image or status, with optional filters.",
    args=CountArgs,
    fn=count,
)
