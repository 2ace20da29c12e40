"""``find_images``: which images match criteria (no labels, with a class, a status, low scores, a name).

Reads the store's paged image list, so it stays fast on big projects. File names in the result are
quoted data for the model, never text it should act on.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlmodel import col, select

from store.categories import get_category_by_name
from store.db import new_session
from store.images import list_images
from store.models import AnnotationStatus, Image
from tools.pipeline import Label
from tools.registry import Tool, ToolContext, ToolError, ToolResult

SHOWN = 20  # images listed in the text; the total always counts every match


class FindImagesArgs(BaseModel):
    unlabeled: bool = Field(False, description="Images without annotations (of label).")
    label: Label | None = Field(None, description="Class filter.")
    status: AnnotationStatus | None = Field(None, description="Status filter.")
    max_score: float | None = Field(None, ge=0, le=1, description="Some score <= this.")
    name_contains: str | None = Field(None, max_length=100, description="File name part.")


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
    with new_session(ctx.engine) as session:
        category_id = None
        if args.label is not None:
            category = get_category_by_name(session, project_id=ctx.project_id, name=args.label)
            if category is None:
                if args.unlabeled:  # no such class yet: every image lacks it
                    category_id = -1
                else:
                    raise ToolError(f"no class {args.label!r} in this project")
            else:
                category_id = category.id
        if args.name_contains is not None:
            statement = select(Image).where(
                Image.project_id == ctx.project_id, col(Image.file_name).contains(args.name_contains)
            )
            named = {i.id for i in session.exec(statement)}
        rows, total = list_images(
            session,
            project_id=ctx.project_id,
            category_id=category_id,
            status=args.status.value if args.status else None,
            without_annotations=args.unlabeled,
            max_score=args.max_score,
            limit=1000,
        )
        if args.name_contains is not None:
            rows = [r for r in rows if r.id in named]
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
