"""``audit``: run the quality checks over the project and store the findings for review."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel, Field

from ops import findings
from tools.audit.runner import run_audit
from tools.registry import Tool, ToolContext, ToolResult


class AuditArgs(BaseModel):
    models: bool = Field(
        True, description="Also re-run the detector and verifier (missing objects, wrong classes); slower."
    )
    top: int = Field(5, ge=0, le=20, description="How many of the worst findings to list.")


class AuditResult(ToolResult):
    open: int
    new: int
    closed: int
    models: bool
    by_kind: dict[str, int]
    top: list[str]

    def text(self) -> str:
        kinds = ", ".join(f"{k} {n}" for k, n in self.by_kind.items()) or "none"
        head = (
            f"audit done{'' if self.models else ' (no models)'}: {self.open} open findings "
            f"({self.new} new, {self.closed} closed since last run): {kinds}"
        )
        return head + ("; worst: " + "; ".join(self.top) if self.top else "")


def describe(finding: dict[str, Any]) -> str:
    """One finding in a line: kind, where, what."""
    where = finding["image"] or "project"
    if finding["annotation_id"] is not None:
        where += f" #{finding['annotation_id']}"
    elif finding["bbox"]:
        where += " at [" + ", ".join(f"{v:.0f}" for v in finding["bbox"]) + "]"
    return f"{finding['kind']} on {where}: {finding['message']}"


def audit(ctx: ToolContext, args: AuditArgs) -> AuditResult:
    backends = ctx.backends if args.models and ctx.backends_factory is not None else None
    report = findings.run_audit(
        ctx.env,
        ctx.caller,
        ctx.project_id,
        lambda session: run_audit(session, project_id=ctx.project_id, home=ctx.home, backends=backends),
    )
    by_kind = Counter(f["kind"] for f in report.findings)
    return AuditResult(
        open=len(report.findings),
        new=report.new,
        closed=sum(report.closed.values()),
        models=report.models,
        by_kind=dict(by_kind.most_common()),
        top=[describe(f) for f in report.findings[: args.top]],
    )


TOOL = Tool(
    name="audit",
    description="Check the project's labels for problems (wrong class, missing objects, tiny or "
    "duplicate boxes, spilled masks) and queue the findings for review.",
    args=AuditArgs,
    fn=audit,
)
