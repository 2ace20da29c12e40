"""Calibration as agent tools: ``calibrate`` (per class, the threshold that reaches a precision,
from what reviewers decided) and ``accept_safe`` ("accept the rest that are safe": apply it as
one undoable change). ``accept_safe`` always answers with a dry run first ("auto-accept 412 of
'car' above 0.71 ..."), however small, which the agent holds; it applies through the tool's
``confirm`` only when the person confirms (``agent.pending``), like the bulk edits.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from ops import calibration
from tools.edit import DryRun, Edited
from tools.pipeline import Label
from tools.registry import Tool, ToolContext, ToolResult


class CalibrateArgs(BaseModel):
    precision: float = Field(0.95, ge=0.5, le=0.99, description="Precision wanted, e.g. 0.95.")
    labels: list[Label] | None = Field(None, description="Only these classes (default: all).")


class AcceptSafeArgs(CalibrateArgs):
    reject: bool = Field(True, description="Also reject the proposals that are safely wrong.")


class CalibrateResult(ToolResult):
    report: str

    def text(self) -> str:
        return self.report


def _calibrate(ctx: ToolContext, args: CalibrateArgs) -> CalibrateResult:
    report = calibration.calibrate(
        ctx.env, ctx.caller, ctx.project_id, precision=args.precision, labels=args.labels
    )
    return CalibrateResult(report=report.text())


def _apply(ctx: ToolContext, args: AcceptSafeArgs, confirm: str | None = None) -> Edited | DryRun:
    out = calibration.apply(
        ctx.env, ctx.caller, ctx.project_id, precision=args.precision, labels=args.labels, reject=args.reject,
        confirm=confirm, preview=confirm is None,
    )  # fmt: skip
    if isinstance(out, calibration.DryRun):
        return DryRun(
            op=out.op, token=out.token, annotations=out.annotations, images=out.images, summary=out.summary
        )
    return Edited(op=out.op, changed=out.changed, summary=out.summary)


TOOLS = [
    Tool("calibrate", "Per class: the score threshold that reaches a precision, from the reviews.",
         CalibrateArgs, _calibrate),
    Tool("accept_safe", "Accept the proposals above each class's calibrated threshold (reject those below).",
         AcceptSafeArgs, lambda ctx, a: _apply(ctx, a), mutates=True,
         confirm=lambda ctx, a, token: _apply(ctx, a, token)),
]  # fmt: skip
