"""Bulk edits by criteria: relabel, rename_class, merge_classes, delete_annotations, set_status.

Each edit is one change batch in the event log, so ``undo`` reverts it whole. An edit that would
touch more than :data:`CONFIRM_OVER` annotations is not applied: the tool returns a :class:`DryRun`
("this will relabel 37 annotations in 12 images") with a token, and only :func:`run_edit` called
with that token applies it. The token fingerprints the operation, its arguments and the exact rows
matched, so a confirmation never applies to a set of rows the user was not shown. Tools never
expose the token argument to the model: the agent holds the pending change and applies it when
the user confirms (see ``agent.pending``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, model_validator
from sqlmodel import Session, col, select

from store.annotations import delete_annotations, relabel, set_status
from store.categories import ensure_categories, get_category_by_name, rename_category
from store.db import new_session
from store.history import begin_change
from store.models import Annotation, AnnotationStatus, ChangeBatch
from tools.pipeline import ImageRef, Label, resolve_image
from tools.registry import Tool, ToolContext, ToolError, ToolResult

CONFIRM_OVER = 3  # more annotations than this: dry run first, apply after the user confirms


class Criteria(BaseModel):
    """Which annotations an edit acts on: all filters given must hold."""

    label: Label | None = Field(None, description="Class filter.")
    images: list[ImageRef] | None = Field(None, description="Image ids or file names.")
    status: AnnotationStatus | None = Field(None, description="Status filter.")
    max_score: float | None = Field(None, ge=0, le=1, description="Score <= this.")
    min_score: float | None = Field(None, ge=0, le=1, description="Score >= this.")

    def any_filter(self) -> bool:
        values = (self.label, self.images, self.status_filter(), self.max_score, self.min_score)
        return any(v is not None for v in values)

    def status_filter(self) -> AnnotationStatus | None:
        return self.status


class RelabelArgs(Criteria):
    to: Label = Field(description="New class.")


class DeleteArgs(Criteria):
    everything: bool = Field(False, description="All annotations.")

    @model_validator(mode="after")
    def _some_filter(self) -> DeleteArgs:
        if not self.everything and not self.any_filter():
            raise ValueError("give a filter (label, images, status, score) or everything=true")
        return self


class StatusArgs(Criteria):
    """``status`` is the status to set: "accept the ties" is {"label": "tie", "status": "accepted"}
    from every model we tried, so the field is named the way they write it; the filter on the
    current status is ``current_status``."""

    status: AnnotationStatus = Field(description="New status.")  # type: ignore[assignment]
    current_status: AnnotationStatus | None = Field(None, description="Current status filter.")

    def status_filter(self) -> AnnotationStatus | None:
        return self.current_status


class RenameArgs(BaseModel):
    old: Label = Field(description="Current name.")
    new: Label = Field(description="New name.")


class MergeArgs(BaseModel):
    sources: list[Label] = Field(min_length=1, description="Classes to merge.")
    into: Label = Field(description="Target class.")


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


@dataclass
class Plan:
    ids: list[int]
    images: int
    summary: str  # "relabel 37 annotations in 12 images from 'car' to 'truck'"
    apply: Callable[[Session, ChangeBatch, list[int]], int]
    empty_ok: bool = False


def _category_id(session: Session, project_id: int, name: str) -> int:
    category = get_category_by_name(session, project_id=project_id, name=name)
    if category is None or category.id is None:
        raise ToolError(f"no class {name!r} in this project")
    return category.id


def _matching(session: Session, project_id: int, c: Criteria) -> tuple[list[int], int]:
    statement = select(Annotation.id, Annotation.image_id).where(Annotation.project_id == project_id)
    if c.label is not None:
        statement = statement.where(Annotation.category_id == _category_id(session, project_id, c.label))
    if c.images:  # an empty list is "no image filter", as models write it
        ids = [resolve_image(session, project_id=project_id, ref=r).id for r in c.images]
        statement = statement.where(col(Annotation.image_id).in_(ids))
    if c.status_filter() is not None:
        statement = statement.where(Annotation.status == c.status_filter())
    if c.min_score is not None:
        statement = statement.where(col(Annotation.score) >= c.min_score)
    if c.max_score is not None:
        statement = statement.where(col(Annotation.score) <= c.max_score)
    rows = session.exec(statement.order_by(col(Annotation.id))).all()
    return [a for a, _ in rows if a is not None], len({i for _, i in rows})


def _describe(c: Criteria) -> str:
    parts = [f"of class {c.label!r}"] if c.label else []
    if (status := c.status_filter()) is not None:
        parts.append(f"with status {status.value}")
    if c.min_score is not None:
        parts.append(f"scoring >= {c.min_score}")
    if c.max_score is not None:
        parts.append(f"scoring <= {c.max_score}")
    return (" " + " ".join(parts)) if parts else ""


def _in(n: int, images: int, what: str = "") -> str:
    return f"{n} annotation{'s' * (n != 1)}{what} in {images} image{'s' * (images != 1)}"


def _to_class(project_id: int, name: str) -> Callable[[Session, ChangeBatch, list[int]], int]:
    def apply(session: Session, batch: ChangeBatch, ids: list[int]) -> int:
        target = ensure_categories(session, project_id=project_id, names=[name])[0]
        return relabel(session, batch=batch, ids=ids, category_id=target.id)  # type: ignore[arg-type]

    return apply


def plan_relabel(session: Session, project_id: int, args: RelabelArgs) -> Plan:
    ids, images = _matching(session, project_id, args)
    what = _in(len(ids), images, _describe(args))
    return Plan(ids, images, f"relabel {what} as {args.to!r}", _to_class(project_id, args.to))


def plan_rename(session: Session, project_id: int, args: RenameArgs) -> Plan:
    _category_id(session, project_id, args.old)
    if get_category_by_name(session, project_id=project_id, name=args.new) is not None:
        raise ToolError(f"class {args.new!r} exists already; use merge_classes to merge {args.old!r} into it")
    ids, images = _matching(session, project_id, Criteria(label=args.old))
    summary = f"rename class {args.old!r} to {args.new!r} ({_in(len(ids), images)})"
    if not ids:  # an empty class: renaming the row loses nothing, there is nothing to undo
        category_id = _category_id(session, project_id, args.old)
        return Plan([], 0, summary, lambda s, b, i: _rename_row(s, category_id, args.new), empty_ok=True)
    return Plan(ids, images, summary, _to_class(project_id, args.new))


def _rename_row(session: Session, category_id: int, name: str) -> int:
    rename_category(session, category_id=category_id, name=name)
    return 0


def plan_merge(session: Session, project_id: int, args: MergeArgs) -> Plan:
    sources = [s for s in dict.fromkeys(args.sources) if s != args.into]
    if not sources:
        raise ToolError(f"nothing to merge: the sources are the target {args.into!r}")
    ids: list[int] = []
    images = 0
    for source in sources:
        found, n = _matching(session, project_id, Criteria(label=source))
        ids += found
        images += n
    what = _in(len(ids), images, f" of {', '.join(map(repr, sources))}")
    return Plan(sorted(ids), images, f"merge {what} into {args.into!r}", _to_class(project_id, args.into))


def plan_delete(session: Session, project_id: int, args: DeleteArgs) -> Plan:
    ids, images = _matching(session, project_id, args)
    what = _in(len(ids), images, _describe(args))
    return Plan(ids, images, f"delete {what}", lambda s, b, i: delete_annotations(s, batch=b, ids=i))


def plan_status(session: Session, project_id: int, args: StatusArgs) -> Plan:
    ids, images = _matching(session, project_id, args)
    what = _in(len(ids), images, _describe(args))
    return Plan(
        ids,
        images,
        f"mark {what} as {args.status.value}",
        lambda s, b, i: set_status(s, batch=b, ids=i, status=args.status.value),
    )


PLANNERS: dict[str, Callable[[Session, int, Any], Plan]] = {
    "relabel": plan_relabel,
    "rename_class": plan_rename,
    "merge_classes": plan_merge,
    "delete_annotations": plan_delete,
    "set_status": plan_status,
}
NO_CONFIRM = frozenset({"rename_class"})  # a whole-class rename loses nothing and names itself


def token(op: str, args: BaseModel, ids: list[int]) -> str:
    """Fingerprint of what would be applied: operation, arguments and the exact rows."""
    payload = json.dumps([op, args.model_dump(mode="json"), ids], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:10]


def _dry_run(op: str, args: BaseModel, plan: Plan) -> DryRun:
    return DryRun(
        op=op,
        token=token(op, args, plan.ids),
        annotations=len(plan.ids),
        images=plan.images,
        summary=plan.summary,
    )


def preview(ctx: ToolContext, op: str, args: BaseModel) -> DryRun:
    """What ``op`` would do now, whatever its size; applies nothing."""
    with new_session(ctx.engine) as session:
        return _dry_run(op, args, PLANNERS[op](session, ctx.project_id, args))


def run_edit(ctx: ToolContext, op: str, args: BaseModel, *, confirm: str | None = None) -> Edited | DryRun:
    """Plan ``op``; apply it when small, or when ``confirm`` is the token of its dry run."""
    with new_session(ctx.engine) as session:
        plan = PLANNERS[op](session, ctx.project_id, args)
        if not plan.ids and not plan.empty_ok:
            raise ToolError(f"no annotations match; nothing to {plan.summary.split(' ', 1)[0]}")
        dry = _dry_run(op, args, plan)
        if confirm is not None and confirm != dry.token:
            raise ToolError("the matching annotations changed since the preview; nothing was applied")
        if confirm is None and len(plan.ids) > CONFIRM_OVER and op not in NO_CONFIRM:
            return dry
        batch = begin_change(session, project_id=ctx.project_id, actor=ctx.actor, description=plan.summary)
        changed = plan.apply(session, batch, plan.ids)
        session.commit()
    return Edited(op=op, changed=changed, summary=plan.summary)


def _tool(op: str, args: type[BaseModel], description: str) -> Tool:
    return Tool(op, description, args, lambda ctx, a: run_edit(ctx, op, a), mutates=True)


TOOLS = [
    _tool("relabel", RelabelArgs, "Change the class of matching annotations."),
    _tool("rename_class", RenameArgs, "Rename a class."),
    _tool("merge_classes", MergeArgs, "Merge classes into one."),
    _tool("delete_annotations", DeleteArgs, "Delete matching annotations."),
    _tool("set_status", StatusArgs, "Accept or reject matching annotations."),
]
