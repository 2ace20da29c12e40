"""``count``: annotation counts from the store, grouped by class, image or status (one SQL query)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import func
from sqlmodel import col, select

from store.categories import get_category_by_name
from store.db import new_session
from store.models import Annotation, AnnotationStatus, Category, Image
from tools.pipeline import ImageRef, Label, resolve_image
from tools.registry import Tool, ToolContext, ToolError, ToolResult

TOP = 50  # groups listed in the text; the total always counts everything


class CountArgs(BaseModel):
    by: Literal["class", "image", "status"] = Field("class", description="How to group the counts.")
    label: Label | None = Field(None, description="Only this class.")
    image: ImageRef | None = Field(None, description="Only this image.")
    status: AnnotationStatus | None = Field(None, description="Only annotations with this review status.")
    min_score: float | None = Field(None, ge=0, le=1, description="Only annotations scoring at least this.")
    max_score: float | None = Field(None, ge=0, le=1, description="Only annotations scoring at most this.")


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
    with new_session(ctx.engine) as session:
        key = {
            "class": col(Category.name),
            "image": col(Image.file_name),
            "status": col(Annotation.status),
        }[args.by]
        statement = (
            select(key, func.count()).select_from(Annotation).where(Annotation.project_id == ctx.project_id)
        )
        if args.by == "class":
            statement = statement.join(Category, col(Category.id) == col(Annotation.category_id))
        elif args.by == "image":
            statement = statement.join(Image, col(Image.id) == col(Annotation.image_id))
        if args.label is not None:
            category = get_category_by_name(session, project_id=ctx.project_id, name=args.label)
            if category is None:
                raise ToolError(f"no class {args.label!r} in this project")
            statement = statement.where(Annotation.category_id == category.id)
        if args.image is not None:
            image = resolve_image(session, project_id=ctx.project_id, ref=args.image)
            statement = statement.where(Annotation.image_id == image.id)
        if args.status is not None:
            statement = statement.where(Annotation.status == args.status)
        if args.min_score is not None:
            statement = statement.where(col(Annotation.score) >= args.min_score)
        if args.max_score is not None:
            statement = statement.where(col(Annotation.score) <= args.max_score)
        rows = session.exec(statement.group_by(key).order_by(func.count().desc(), key)).all()
    groups = {str(getattr(k, "value", k)): int(n) for k, n in rows}
    return CountResult(by=args.by, total=sum(groups.values()), groups=groups)


TOOL = Tool(
    name="count",
    description="Count annotations, grouped by class, image or status, with optional filters.",
    args=CountArgs,
    fn=count,
)
