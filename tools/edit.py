"""Bulk edits by criteria as agent tools: relabel, rename_class, merge_classes, delete_annotations,
set_status. The schemas are what the model sees; the work is ``ops.bulk.edit`` (one change batch,
the policy, the dry run over :data:`CONFIRM_OVER` annotations with its token). Tools never expose
the token to the model: the agent holds the pending change and applies it through the tool's
``confirm`` when the person confirms (see ``agent.pending``).
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import BaseModel, Field, model_validator

from ops import bulk
from ops.errors import OpError
from store.models import AnnotationStatus
from tools.pipeline import ImageRef, Label
from tools.registry import Asks, From, Source, Tool, ToolContext, ToolError, ToolResult

CONFIRM_OVER = bulk.CONFIRM_OVER


class Criteria(BaseModel):
    """Which annotations an edit acts on: all filters given must hold."""

    label: Annotated[Label | None, From(Source.CLASS)] = Field(None, description="Class filter.")
    images: Annotated[list[ImageRef] | None, From(Source.IMAGE)] = Field(
        None, description="Image ids or file names."
    )
    status: Annotated[AnnotationStatus | None, From(Source.STATUS)] = Field(
        None, description="Status filter."
    )
    max_score: Annotated[float | None, From(Source.MAX_SCORE)] = Field(
        None, ge=0, le=1, description="Score <= this."
    )
    min_score: Annotated[float | None, From(Source.MIN_SCORE)] = Field(
        None, ge=0, le=1, description="Score >= this."
    )

    def any_filter(self) -> bool:
        values = (self.label, self.images, self.status_filter(), self.max_score, self.min_score)
        return any(v is not None for v in values)

    def status_filter(self) -> AnnotationStatus | None:
        return self.status


class RelabelArgs(Criteria):
    to: Annotated[Label, From(Source.NEW_CLASS)] = Field(description="New class.")


class DeleteArgs(Criteria):
    ASKS: ClassVar[Asks] = Asks.DELETE
    everything: Annotated[bool, From(Source.EVERY)] = Field(False, description="All annotations.")

    @model_validator(mode="after")
    def _some_filter(self) -> DeleteArgs:
        if not self.everything and not self.any_filter():
            raise ValueError("give a filter (label, images, status, score) or everything=true")
        return self


class StatusArgs(Criteria):
    """``status`` is the status to set: "accept the ties" is {"label": "tie", "status": "accepted"}
    from every model we tried, so the field is named the way they write it; the filter on the
    current status is ``current_status``."""

    status: Annotated[AnnotationStatus, From(Source.NEW_STATUS)] = Field(description="New status.")  # type: ignore[assignment]
    current_status: Annotated[AnnotationStatus | None, From(Source.STATUS)] = Field(
        None, description="Current status filter."
    )

    def status_filter(self) -> AnnotationStatus | None:
        return self.current_status


class RenameArgs(BaseModel):
    old: Label = Field(description="Current name.")
    new: Annotated[Label, From(Source.NEW_CLASS)] = Field(description="New name.")


class MergeArgs(BaseModel):
    sources: list[Label] = Field(min_length=1, description="Classes to merge.")
    into: Annotated[Label, From(Source.NEW_CLASS)] = Field(description="Target class.")


class Edited(ToolResult):
    op: str
    changed: int
    summary: str

    def text(self) -> str:
        return f"done: {self.summary} ({self.changed} changed; undo reverts it)"


class DryRun(ToolResult):
    op: str
    token: str
    annotations: int
    images: int
    summary: str

    def text(self) -> str:
        return (
            f"DRY RUN, nothing changed yet: this will {self.summary}. "
            "Tell the user and ask them to reply yes to apply it."
        )


def _result(out: bulk.Edited | bulk.DryRun) -> Edited | DryRun:
    if isinstance(out, bulk.DryRun):
        return DryRun(
            op=out.op, token=out.token, annotations=out.annotations, images=out.images, summary=out.summary
        )
    return Edited(op=out.op, changed=out.changed, summary=out.summary)


def preview(ctx: ToolContext, op: str, args: BaseModel) -> DryRun:
    """What ``op`` would do now, whatever its size; applies nothing."""
    out = bulk.edit(ctx.env, ctx.caller, ctx.project_id, op, args.model_dump(mode="json"), preview=True)
    assert isinstance(out, bulk.DryRun)
    return DryRun(
        op=out.op, token=out.token, annotations=out.annotations, images=out.images, summary=out.summary
    )


def run_edit(ctx: ToolContext, op: str, args: BaseModel, *, confirm: str | None = None) -> Edited | DryRun:
    """Plan ``op`` (through ``ops.bulk``); apply it when small, or when ``confirm`` is its token."""
    try:
        out = bulk.edit(
            ctx.env, ctx.caller, ctx.project_id, op, args.model_dump(mode="json"), confirm=confirm
        )
    except OpError as exc:
        raise ToolError(str(exc)) from None
    return _result(out)


PLANNERS = frozenset(bulk.NEEDS)


def _tool(op: str, args: type[BaseModel], description: str) -> Tool:
    return Tool(
        op, description, args, lambda ctx, a: run_edit(ctx, op, a), mutates=True,
        confirm=lambda ctx, a, token: run_edit(ctx, op, a, confirm=token),
    )  # fmt: skip


TOOLS = [
    _tool("relabel", RelabelArgs, "Change the class of matching annotations."),
    _tool("rename_class", RenameArgs, "Rename a class."),
    _tool("merge_classes", MergeArgs, "Merge classes into one."),
    _tool("delete_annotations", DeleteArgs, "Delete matching annotations."),
    _tool("set_status", StatusArgs, "Accept or reject matching annotations."),
]
