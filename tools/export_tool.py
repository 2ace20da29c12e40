"""``export``: write the project as COCO JSON under ``<home>/exports`` and say where."""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, Field

from store.coco_export import export_coco
from store.db import new_session
from store.models import Project
from tools.registry import Tool, ToolContext, ToolError, ToolResult


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
    with new_session(ctx.engine) as session:
        project = session.get(Project, ctx.project_id)
        if project is None:
            raise ToolError(f"project {ctx.project_id} does not exist")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = ctx.home / "exports" / f"{project.name}-{stamp}.coco.json"
        report = export_coco(session, project_id=ctx.project_id, out_path=out, status=statuses)
    return ExportResult(
        path=str(out), images=report.images, annotations=report.annotations, categories=report.categories
    )


TOOL = Tool(
    name="export",
    description="Export annotations as COCO JSON.",
    args=ExportArgs,
    fn=export,
)
