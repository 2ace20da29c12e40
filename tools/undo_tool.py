"""``undo``: revert the project's most recent change (one change batch: a bulk edit, a labeling run)."""

from __future__ import annotations

from pydantic import BaseModel

from ops import history
from store.errors import StoreError
from tools.registry import Tool, ToolContext, ToolError, ToolResult


class UndoArgs(BaseModel):
    """No arguments: undo always acts on the newest change not undone yet."""


class UndoResult(ToolResult):
    reverted: str
    affected: int

    def text(self) -> str:
        return f"undone: {self.reverted} ({self.affected} annotations restored)"


def undo(ctx: ToolContext, args: UndoArgs) -> UndoResult:
    try:
        result = history.step(ctx.env, ctx.caller, ctx.project_id, "undo")
    except StoreError as exc:  # a row changed since, or its class was deleted
        raise ToolError(f"cannot undo: {exc}") from None
    if result is None:
        raise ToolError("nothing to undo")
    return UndoResult(reverted=result.description, affected=result.affected)


TOOL = Tool(
    name="undo",
    description="Undo the last change to annotations.",
    args=UndoArgs,
    fn=undo,
    mutates=True,
)
