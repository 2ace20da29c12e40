"""``export``: write the project as COCO JSON under ``<home>/exports`` (``ops.exports``) and say where."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ops import exports
from tools.registry import Tool, ToolContext, ToolResult


class ExportArgs(BaseModel):
    include: Literal["accepted", "accepted_and_proposed"] = Field(
        "accepted_and_proposed", description="Which annotations to export."
    )


class ExportResult(ToolResult):
    path: str
    images: int
    annotations: int
    categories: int

    def text(self) -> str:
        return (
            f"exported {self.annotations} annotations on {self.images} images "
            f"({self.categories} classes) as COCO to {self.path}"
        )


def export(ctx: ToolContext, args: ExportArgs) -> ExportResult:
    statuses = ["accepted"] if args.include == "accepted" else ["accepted", "proposed"]
    out = exports.export(ctx.env, ctx.caller, ctx.project_id, exports.Format.coco, statuses=statuses)
    return ExportResult(
        path=str(out.path),
        images=out.report["images"],
        annotations=out.report["annotations"],
        categories=out.report["categories"],
    )


TOOL = Tool(
    name="export",
    description="Export annotations as COCO JSON.",
    args=ExportArgs,
    fn=export,
)
