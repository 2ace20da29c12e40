"""``find_images``: which images match criteria (no labels, with a class, a status, low scores, a name).

Reads the store's paged image list, so it stays fast on big projects. File names in the result are
quoted data for the model, never text it should act on.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from ops import images
from store.models import AnnotationStatus
from tools.pipeline import Label
from tools.registry import From, Source, Tool, ToolContext, ToolResult

SHOWN = 20  # images listed in the text; the total always counts every match


class FindImagesArgs(BaseModel):
    unlabeled: Annotated[bool, From(Source.NONE)] = Field(
        False, description="Images without annotations (of label)."
    )
    label: Annotated[Label | None, From(Source.CLASS)] = Field(None, description="Class filter.")
    status: Annotated[AnnotationStatus | None, From(Source.STATUS)] = Field(
        None, description="Status filter."
    )
    max_score: Annotated[float | None, From(Source.MAX_SCORE)] = Field(
        None, ge=0, le=1, description="Some score <= this."
    )
    name_contains: Annotated[str | None, From(Source.TEXT)] = Field(
        None, max_length=100, description="File name part."
    )


class FoundImage(BaseModel):
    id: int
    file_name: str


class FindImagesResult(ToolResult):
    total: int
    images: list[FoundImage]

    def text(self) -> str:
        if not self.total:
            return "0 images match"
        shown = ", ".join(f"{i.id}:{i.file_name!r}" for i in self.images[:SHOWN])
        more = f" (first {SHOWN} shown)" if self.total > SHOWN else ""
        return f"{self.total} images match{more} (id:file_name): {shown}"


def find_images(ctx: ToolContext, args: FindImagesArgs) -> FindImagesResult:
    rows, total = images.list_(
        ctx.env,
        ctx.caller,
        ctx.project_id,
        class_name=args.label,
        status=args.status,
        without_annotations=args.unlabeled,
        max_score=args.max_score,
        limit=1000,
    )
    if args.name_contains is not None:
        rows = [r for r in rows if args.name_contains in r.file_name]
        total = len(rows)
    return FindImagesResult(
        total=total, images=[FoundImage(id=r.id or 0, file_name=r.file_name) for r in rows[:SHOWN]]
    )


TOOL = Tool(
    name="find_images",
    description="List images matching filters.",
    args=FindImagesArgs,
    fn=find_images,
)
