"""Changes by criteria ("relabel the cars in these images as trucks", "reject below 0.3"), with
the one confirmation mechanism for large changes.

An edit that would touch more than ``confirm_over`` annotations is not applied: it returns a
:class:`DryRun` with a token that fingerprints the operation, its arguments and the exact rows
matched with their versions. Only :func:`edit` called again with that token applies it, so a
confirmation never applies to rows the person was not shown, or that someone changed since. The
token is never shown to a model: the agents hold it (``agent.pending``) and apply it when the
person's own next message confirms.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from ops import names
from ops.caller import Caller
from ops.errors import Conflict, Invalid
from ops.filters import category_of, resolve
from ops.unit import Env, Unit, change
from store.annotation_queries import matching
from store.annotations import delete_annotations, relabel, set_status
from store.categories import delete_category, ensure_categories, get_category_by_name, rename_category
from store.filters import AnnotationFilter
from store.history import record_class
from store.models import Annotation, AnnotationStatus, Category, ChangeBatch

CONFIRM_OVER = 3  # more annotations than this: dry run first, apply after the person confirms
NEEDS = {  # the policy's operation for each kind of edit
    "relabel": "annotation.edit",
    "rename_class": "category.rename",
    "merge_classes": "category.merge",
    "delete_annotations": "annotation.delete",
    "set_status": "annotation.review",
}


@dataclass(frozen=True)
class Criteria:
    """Which annotations, as a person names them; None means any."""

    label: str | None = None
    images: Sequence[int | str] | None = None
    status: AnnotationStatus | str | None = None
    min_score: float | None = None
    max_score: float | None = None

    def filter(self, session: Session, project_id: int) -> AnnotationFilter:
        return resolve(
            session, project_id, label=self.label, images=self.images, status=self.status,
            min_score=self.min_score, max_score=self.max_score,
        )  # fmt: skip

    def describe(self) -> str:
        parts = [f"of class {self.label!r}"] if self.label else []
        if self.status is not None:
            parts.append(f"with status {AnnotationStatus(self.status).value}")
        if self.min_score is not None:
            parts.append(f"scoring >= {self.min_score}")
        if self.max_score is not None:
            parts.append(f"scoring <= {self.max_score}")
        return (" " + " ".join(parts)) if parts else ""


@dataclass(frozen=True)
class Edited:
    op: str
    changed: int
    summary: str
    batch_id: int | None


@dataclass(frozen=True)
class DryRun:
    op: str
    token: str
    annotations: int
    images: int
    summary: str  # "relabel 37 annotations in 12 images as 'truck'"


Apply = Callable[[Session, ChangeBatch, list[int]], int]


@dataclass
class Plan:
    ids: list[int]
    images: int
    summary: str
    apply: Apply
    empty_ok: bool = False


def _in(n: int, images: int, what: str = "") -> str:
    return f"{n} annotation{'s' * (n != 1)}{what} in {images} image{'s' * (images != 1)}"


def _to_class(project_id: int, name: str) -> Apply:
    def apply(session: Session, batch: ChangeBatch, ids: list[int]) -> int:
        (target,) = ensure_categories(session, project_id=project_id, names=[name])
        return relabel(session, batch=batch, ids=ids, category_id=target.id)  # type: ignore[arg-type]

    return apply


def _moved_to(project_id: int, old_id: int, name: str) -> Apply:
    """A rename of a used class: its annotations move to a new class (one undoable relabel each)
    and the emptied old class goes, so the class list never shows it beside the new one. Both
    class changes are in the batch's history: undo brings the old class back under its id."""

    def apply(session: Session, batch: ChangeBatch, ids: list[int]) -> int:
        (target,) = ensure_categories(session, project_id=project_id, names=[name])
        record_class(session, batch=batch, category=target, action="class_create")
        moved = relabel(session, batch=batch, ids=ids, category_id=target.id)  # type: ignore[arg-type]
        old = session.get(Category, old_id)
        if old is not None:
            record_class(session, batch=batch, category=old, action="class_delete")
            delete_category(session, category_id=old_id)
        return moved

    return apply


def _plan(unit: Unit, op: str, args: dict[str, Any]) -> Plan:
    session, pid = unit.session, unit.project_id
    if op in ("relabel", "delete_annotations", "set_status"):
        status_key = "current_status" if op == "set_status" else "status"
        criteria = Criteria(
            **{k: args.get(k) for k in ("label", "images", "min_score", "max_score")},
            status=args.get(status_key),
        )
        where = criteria.filter(session, pid)
        if op == "delete_annotations" and where.is_everything() and not args.get("everything"):
            raise Invalid("give a filter (label, images, status, score) or everything=true")
        ids, images = matching(session, project_id=pid, where=where)
        what = _in(len(ids), images, criteria.describe())
        if op == "relabel":
            to = names.class_name(args["to"])
            return Plan(ids, images, f"relabel {what} as {to!r}", _to_class(pid, to))
        if op == "delete_annotations":
            return Plan(ids, images, f"delete {what}", lambda s, b, i: delete_annotations(s, batch=b, ids=i))
        status = AnnotationStatus(args["status"])
        return Plan(ids, images, f"mark {what} as {status.value}",
                    lambda s, b, i: set_status(s, batch=b, ids=i, status=status.value))  # fmt: skip
    if op == "rename_class":
        old, new = category_of(session, pid, args["old"]), names.class_name(args["new"])
        if get_category_by_name(session, project_id=pid, name=new) is not None:
            raise Conflict(f"class {new!r} exists already; use merge_classes to merge {old.name!r} into it")
        ids, images = matching(session, project_id=pid, where=AnnotationFilter(category_ids=(old.id or 0,)))
        summary = f"rename class {old.name!r} to {new!r} ({_in(len(ids), images)})"
        if not ids:  # an empty class: renaming the row loses nothing, there is nothing to undo
            return Plan([], 0, summary, lambda s, b, i: _rename_row(s, old.id or 0, new), empty_ok=True)
        return Plan(ids, images, summary, _moved_to(pid, old.id or 0, new))
    if op == "merge_classes":
        into = names.class_name(args["into"])
        sources = [category_of(session, pid, s) for s in dict.fromkeys(args["sources"]) if s != into]
        if not sources:
            raise Invalid(f"nothing to merge: the sources are the target {into!r}")
        where = AnnotationFilter(category_ids=tuple(c.id or 0 for c in sources))
        ids, images = matching(session, project_id=pid, where=where)
        what = _in(len(ids), images, f" of {', '.join(repr(c.name) for c in sources)}")
        return Plan(ids, images, f"merge {what} into {into!r}", _to_class(pid, into))
    raise Invalid(f"unknown edit {op!r}; expected one of {sorted(NEEDS)}")


def _rename_row(session: Session, category_id: int, name: str) -> int:
    rename_category(session, category_id=category_id, name=name)
    return 0


def fingerprint(session: Session, op: str, args: dict[str, Any], ids: list[int]) -> str:
    """The confirmation token of a change: operation, arguments and the exact rows with versions."""
    versions = (
        dict(session.exec(select(Annotation.id, Annotation.version).where(col(Annotation.id).in_(ids))).all())
        if ids
        else {}
    )
    payload = json.dumps([op, args, [[i, versions.get(i)] for i in ids]], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def edit(
    env: Env,
    caller: Caller | None,
    project_id: int,
    op: str,
    args: dict[str, Any],
    *,
    confirm: str | None = None,
    preview: bool = False,
    confirm_over: int = CONFIRM_OVER,
) -> Edited | DryRun:
    """Plan ``op`` and apply it when small, or when ``confirm`` is the token of its dry run.

    ``preview`` only plans (whatever the size). Raises Conflict when the rows changed since the
    dry run that ``confirm`` names, Invalid when nothing matches.
    """
    if op not in NEEDS:
        raise Invalid(f"unknown edit {op!r}; expected one of {sorted(NEEDS)}")
    with change(env, caller, NEEDS[op], project_id) as unit:
        assert unit.access is not None
        if op in ("relabel", "rename_class", "merge_classes"):
            unit.access.require("category.create", f"{op} to a new class name")
        plan = _plan(unit, op, args)
        if not plan.ids and not plan.empty_ok:
            raise Invalid(f"no annotations match; nothing to {plan.summary.split(' ', 1)[0]}")
        token = fingerprint(unit.session, op, args, plan.ids)
        dry = DryRun(op, token, len(plan.ids), plan.images, plan.summary)
        if preview:
            return dry
        if confirm is not None and confirm != token:
            raise Conflict("the matching annotations changed since the preview; nothing was applied")
        if confirm is None and len(plan.ids) > confirm_over and op != "rename_class":
            return dry
        batch = unit.batch(plan.summary)
        changed = plan.apply(unit.session, batch, plan.ids)
        kind = "category" if op in ("rename_class", "merge_classes") else "annotation"
        unit.event(
            kind if not plan.ids else "annotation",
            "deleted" if op == "delete_annotations" else "updated",
            plan.ids,
        )
        if kind == "category" and plan.ids:  # the class list changed too (a rename drops the old class)
            unit.event("category", "updated")
        return Edited(op, changed, plan.summary, batch.id if plan.ids else None)
