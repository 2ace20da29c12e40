"""The review queue as tools: show the worst open finding, then fix, accept or skip it.

A :class:`ReviewState` holds one review conversation's place in the queue: the finding shown last
(the one "that one" means), the skipped ones, and a pending bulk delete. Every action on an
annotation is one change batch through the store's history writers, so ``labelwright undo``
reverts it; the finding is closed in the same commit. Each action's result ends with the next
finding, so a person can work through the queue one short message at a time.

``delete_all_of_kind`` is two-step on purpose: the first call only describes what would go, and
only a call in a LATER turn (after the person saw that summary and said yes) deletes.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field
from sqlmodel import Session

from store import annotations as repo
from store.categories import get_category, get_category_by_name, list_categories
from store.db import new_session
from store.findings import close_finding, get_finding, list_findings
from store.history import begin_change
from store.masks import rle_from_mask
from store.models import Annotation, AuditFinding, Image
from tools.pipeline import category_ids, clip_to_box, load_rgb
from tools.registry import Registry, Tool, ToolContext, ToolError, ToolResult

AnnotationKind = Literal[
    "tiny_box",
    "degenerate_box",
    "extreme_aspect",
    "box_outside_image",
    "empty_mask",
    "sparse_mask",
    "mask_spills",
    "loose_box",
    "fragmented_mask",
    "self_intersecting_polygon",
    "duplicate",
    "class_conflict",
    "label_mismatch",
]
MISSING = "missing_object"
QUEUE = 10_000  # open findings read per lookup; a review works through far fewer


@dataclass
class PendingDelete:
    kind: str
    annotation_ids: list[int]
    finding_ids: list[int]
    turn: int


@dataclass
class ReviewState:
    """One review conversation's place in the queue. ``turn`` counts the person's messages."""

    current: int | None = None
    skipped: set[int] = field(default_factory=set)
    turn: int = 0
    pending: PendingDelete | None = None


class Target(BaseModel):
    """The tools act on the finding shown last: a small model given an id field invents ids."""


class RelabelArgs(Target):
    label: str = Field(min_length=1, max_length=64, description="The correct class, e.g. 'truck'.")


class BoxArgs(Target):
    box: list[float] = Field(min_length=4, max_length=4, description="New box [x1, y1, x2, y2] in pixels.")


class ResegmentArgs(Target):
    box: list[float] | None = Field(None, min_length=4, max_length=4, description="Box [x1, y1, x2, y2].")
    points: list[list[float]] | None = Field(None, min_length=1, max_length=20, description="[[x, y], ...]")


class BulkArgs(BaseModel):
    kind: AnnotationKind = Field(description="Finding kind whose annotations go, e.g. tiny_box.")
    confirm: bool = Field(False, description="True only after the user confirmed the dry-run summary.")


class ReviewText(ToolResult):
    done: str
    next: str | None = None

    def text(self) -> str:
        return self.done + (f"\nnext: {self.next}" if self.next else "")


def _box(bbox: list[float]) -> str:
    return "[" + ", ".join(f"{v:.0f}" for v in bbox) + "]"


def describe(session: Session, finding: AuditFinding, left: int) -> str:
    """The finding in a line: id, kind, message, image, and its annotation's class, box and score."""
    image = session.get(Image, finding.image_id) if finding.image_id is not None else None
    where = image.file_name if image is not None else "the project"
    text = f"finding {finding.id} ({left} open): {finding.kind} on {where}: {finding.message}"
    ann = session.get(Annotation, finding.annotation_id) if finding.annotation_id is not None else None
    if ann is not None:
        category = get_category(session, category_id=ann.category_id)
        score = "none" if ann.score is None else f"{ann.score:.2f}"
        text += (
            f". annotation #{ann.id} {category.name if category else '?'} box {_box(ann.bbox)}"
            f" score {score} {ann.status.value}"
        )
    elif finding.kind == MISSING and finding.bbox:
        text += f". box {_box(finding.bbox)} (resegment adds it)"
    return text


def _queue(session: Session, ctx: ToolContext, state: ReviewState) -> list[AuditFinding]:
    rows = list_findings(session, project_id=ctx.project_id, status="open", limit=QUEUE)
    return [f for f in rows if f.id not in state.skipped]


def _next(session: Session, ctx: ToolContext, state: ReviewState) -> str:
    queue = _queue(session, ctx, state)
    if not queue:
        state.current = None
        skipped = f" ({len(state.skipped)} skipped)" if state.skipped else ""
        return f"no open findings left{skipped}"
    state.current = queue[0].id
    return describe(session, queue[0], len(queue))


def _finding(session: Session, ctx: ToolContext, state: ReviewState) -> AuditFinding:
    fid = state.current
    if fid is None:
        raise ToolError("no finding is selected: call next_finding first")
    finding = get_finding(session, finding_id=fid)
    if finding is None or finding.project_id != ctx.project_id:
        raise ToolError(f"no finding {fid} in this project")
    if finding.status != "open":
        raise ToolError(f"finding {fid} is already closed ({finding.resolution})")
    return finding


def _annotation(session: Session, finding: AuditFinding) -> Annotation:
    ann = session.get(Annotation, finding.annotation_id) if finding.annotation_id is not None else None
    if ann is None:
        what = "is about the image or project" if finding.annotation_id is None else "lost its annotation"
        raise ToolError(f"finding {finding.id} ({finding.kind}) {what}: accept_as_is or skip it")
    return ann


def _close(session: Session, ctx: ToolContext, state: ReviewState, finding: AuditFinding, how: str) -> str:
    close_finding(session, finding_id=finding.id, resolution=how)  # type: ignore[arg-type]  # commits
    state.skipped.discard(finding.id)  # type: ignore[arg-type]
    return _next(session, ctx, state)


def _batch(session: Session, ctx: ToolContext, what: str):  # type: ignore[no-untyped-def]
    return begin_change(session, project_id=ctx.project_id, actor=ctx.actor, description=f"review: {what}")


def review_tools(state: ReviewState) -> Registry:
    """The review tools bound to one conversation's ``state``."""

    def next_finding(ctx: ToolContext, args: Target) -> ReviewText:
        with new_session(ctx.engine) as session:
            return ReviewText(done=_next(session, ctx, state))

    def skip(ctx: ToolContext, args: Target) -> ReviewText:
        with new_session(ctx.engine) as session:
            finding = _finding(session, ctx, state)
            state.skipped.add(finding.id)  # type: ignore[arg-type]
            return ReviewText(done=f"skipped finding {finding.id}", next=_next(session, ctx, state))

    def accept_as_is(ctx: ToolContext, args: Target) -> ReviewText:
        with new_session(ctx.engine) as session:
            finding = _finding(session, ctx, state)
            ann = session.get(Annotation, finding.annotation_id) if finding.annotation_id else None
            if ann is not None:
                repo.set_status(
                    session, batch=_batch(session, ctx, f"accept #{ann.id}"), ids=[ann.id], status="accepted"
                )  # type: ignore[list-item]
            nxt = _close(session, ctx, state, finding, "accepted")
            return ReviewText(done=f"finding {finding.id} accepted as is", next=nxt)

    def reject_annotation(ctx: ToolContext, args: Target) -> ReviewText:
        with new_session(ctx.engine) as session:
            finding = _finding(session, ctx, state)
            ann = _annotation(session, finding)
            repo.set_status(
                session, batch=_batch(session, ctx, f"reject #{ann.id}"), ids=[ann.id], status="rejected"
            )  # type: ignore[list-item]
            return ReviewText(
                done=f"#{ann.id} rejected", next=_close(session, ctx, state, finding, "rejected")
            )

    def relabel(ctx: ToolContext, args: RelabelArgs) -> ReviewText:
        with new_session(ctx.engine) as session:
            finding = _finding(session, ctx, state)
            ann = _annotation(session, finding)
            category = get_category_by_name(session, project_id=ctx.project_id, name=args.label)
            if category is None:
                names = [c.name for c in list_categories(session, project_id=ctx.project_id)]
                near = difflib.get_close_matches(args.label, names, n=3, cutoff=0.5)
                hint = f"did you mean {', '.join(near)}?" if near else f"classes: {', '.join(names)}"
                raise ToolError(f"no class {args.label!r} in this project; {hint}")
            old = get_category(session, category_id=ann.category_id)
            repo.relabel(
                session,
                batch=_batch(session, ctx, f"relabel #{ann.id} -> {category.name}"),
                ids=[ann.id],
                category_id=category.id,
            )  # type: ignore[list-item,arg-type]
            done = f"#{ann.id} relabelled {old.name if old else '?'} -> {category.name}"
            return ReviewText(done=done, next=_close(session, ctx, state, finding, "relabelled"))

    def delete_annotation(ctx: ToolContext, args: Target) -> ReviewText:
        with new_session(ctx.engine) as session:
            finding = _finding(session, ctx, state)
            ann = _annotation(session, finding)
            repo.delete_annotation(
                session, batch=_batch(session, ctx, f"delete #{ann.id}"), annotation_id=ann.id
            )  # type: ignore[arg-type]
            return ReviewText(done=f"#{ann.id} deleted", next=_close(session, ctx, state, finding, "deleted"))

    def adjust_box(ctx: ToolContext, args: BoxArgs) -> ReviewText:
        x1, y1, x2, y2 = args.box
        if x2 <= x1 or y2 <= y1:
            raise ToolError(f"box must be [x1, y1, x2, y2] with x2 > x1 and y2 > y1, got {args.box}")
        with new_session(ctx.engine) as session:
            finding = _finding(session, ctx, state)
            ann = _annotation(session, finding)
            had_mask = ann.mask is not None
            try:
                repo.update_annotation(
                    session,
                    batch=_batch(session, ctx, f"box #{ann.id}"),
                    annotation_id=ann.id,
                    mask=None,
                    bbox=[x1, y1, x2 - x1, y2 - y1],
                )  # type: ignore[arg-type]
            except ValueError as exc:
                raise ToolError(str(exc)) from None
            done = f"#{ann.id} box now {_box([x1, y1, x2, y2])}" + (
                " (mask dropped: resegment for a new one)" if had_mask else ""
            )
            return ReviewText(done=done, next=_close(session, ctx, state, finding, "fixed"))

    def resegment(ctx: ToolContext, args: ResegmentArgs) -> ReviewText:
        with new_session(ctx.engine) as session:
            finding = _finding(session, ctx, state)
            ann = None if finding.kind == MISSING else _annotation(session, finding)
            image = session.get(Image, finding.image_id)
            if image is None:
                raise ToolError(f"finding {finding.id} has no image")
            if args.box is not None:
                box = np.asarray([args.box], np.float32)
            elif args.points is None:
                b = finding.bbox if ann is None else ann.bbox
                box = np.asarray([[b[0], b[1], b[0] + b[2], b[1] + b[3]]], np.float32)  # type: ignore[index]
            else:
                box = None
            segmenter = ctx.backends.segmenter
            segmenter.set_image(load_rgb(ctx.home, image), key=image.id)
            points = None if args.points is None else np.asarray(args.points, np.float32)
            labels = None if points is None else np.ones(len(points), np.int32)
            masks, _ = segmenter.segment(boxes=box, points=points, point_labels=labels)
            mask = np.asarray(masks[0], bool)
            if box is not None:
                mask = clip_to_box(mask, box[0])
            if not mask.any():
                raise ToolError("the segmenter found nothing there; give a tighter box or points")
            if ann is None:
                label = str(finding.evidence.get("class", ""))
                category = category_ids(session, project_id=ctx.project_id, labels=[label])[label]
                new = repo.create_annotation(
                    session,
                    batch=_batch(session, ctx, f"add missing {label}"),
                    image_id=image.id,
                    category_id=category,
                    mask=rle_from_mask(mask),
                    status="accepted",
                    tool="review",
                    model=segmenter.model_id,
                    prompt=label,
                    author=ctx.actor,
                )  # type: ignore[arg-type]
                done = f"added #{new.id} {label} box {_box(new.bbox)}"
                return ReviewText(done=done, next=_close(session, ctx, state, finding, "added"))
            updated = repo.update_annotation(
                session,
                batch=_batch(session, ctx, f"resegment #{ann.id}"),
                annotation_id=ann.id,
                mask=rle_from_mask(mask),
            )  # type: ignore[arg-type]
            done = f"#{ann.id} resegmented: box {_box(updated.bbox)}, area {updated.area:.0f} px"  # type: ignore[union-attr]
            return ReviewText(done=done, next=_close(session, ctx, state, finding, "fixed"))

    def delete_all_of_kind(ctx: ToolContext, args: BulkArgs) -> ReviewText:
        with new_session(ctx.engine) as session:
            rows = [
                f for f in _queue(session, ctx, state) if f.kind == args.kind and f.annotation_id is not None
            ]
            rows = [f for f in rows if session.get(Annotation, f.annotation_id) is not None]
            ids = sorted({f.annotation_id for f in rows})  # type: ignore[type-var]
            pending = state.pending
            if not args.confirm:
                if not ids:
                    raise ToolError(f"no open {args.kind} findings with annotations")
                state.pending = PendingDelete(args.kind, ids, [f.id for f in rows], state.turn)  # type: ignore[misc]
                images = len({f.image_id for f in rows})
                shown = ", ".join(f"#{i}" for i in ids[:10]) + (" ..." if len(ids) > 10 else "")
                return ReviewText(
                    done=f"dry run: would delete {len(ids)} annotations flagged {args.kind} on {images} "
                    f"images ({shown}). Ask the user to confirm; nothing deleted yet."
                )
            if pending is None or pending.kind != args.kind:
                raise ToolError(
                    f"call delete_all_of_kind for {args.kind} without confirm first, show the summary"
                )
            if pending.turn < state.turn - 1:
                state.pending = None
                raise ToolError("that dry run is older than the last turn: run it again without confirm")
            if pending.turn >= state.turn:
                raise ToolError(
                    "the user has not confirmed yet: show the dry-run summary and wait for their answer"
                )
            state.pending = None
            keep = [i for i in pending.annotation_ids if session.get(Annotation, i) is not None]
            repo.delete_annotations(
                session, batch=_batch(session, ctx, f"delete {len(keep)} {args.kind}"), ids=keep
            )
            for fid in pending.finding_ids:
                finding = get_finding(session, finding_id=fid)
                if finding is not None and finding.status == "open":
                    close_finding(session, finding_id=fid, resolution="deleted")
            session.commit()
            return ReviewText(
                done=f"deleted {len(keep)} annotations flagged {args.kind} (undo reverts it)",
                next=_next(session, ctx, state),
            )

    return Registry(
        [
            Tool(
                "next_finding",
                "Show the worst open finding: kind, message, image, annotation id/class/box/score.",
                Target,
                next_finding,
            ),
            Tool(
                "accept_as_is",
                "The flagged label is fine: accept it and close the finding.",
                Target,
                accept_as_is,
                mutates=True,
            ),
            Tool(
                "reject_annotation",
                "Reject the flagged annotation (kept, marked rejected).",
                Target,
                reject_annotation,
                mutates=True,
            ),
            Tool(
                "relabel", "Move the flagged annotation to another class.", RelabelArgs, relabel, mutates=True
            ),
            Tool(
                "delete_annotation", "Delete the flagged annotation.", Target, delete_annotation, mutates=True
            ),
            Tool(
                "adjust_box", "Set a new box for the flagged annotation.", BoxArgs, adjust_box, mutates=True
            ),
            Tool(
                "resegment",
                "Redo the mask from a box or points (adds the object for a missing_object finding).",
                ResegmentArgs,
                resegment,
                mutates=True,
            ),
            Tool("skip", "Leave the finding open and show the next.", Target, skip),
            Tool(
                "delete_all_of_kind",
                "Delete every annotation with an open finding of a kind. First call without confirm "
                "(dry run); confirm=true only after the user agreed.",
                BulkArgs,
                delete_all_of_kind,
                mutates=True,
            ),
        ]
    )
