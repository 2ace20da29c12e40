"""The review queue as tools: show the worst open finding, then fix, accept or skip it.

A :class:`ReviewState` holds one review conversation's place in the queue: the finding shown last
(the one "that one" means) and the skipped ones. Every action is ``ops.findings.resolve``: the
annotation change and the finding's closing in one change batch, so ``labelwright undo`` reverts
it. Each action's result ends with the next finding, so a person can work through the queue one
short message at a time.

``delete_all_of_kind`` answers with a dry run; it applies through the tool's ``confirm`` only
when the person's own next message confirms (``agent.pending``, the same mechanism as the
command agent's bulk edits): the model cannot confirm it.

``hardest_proposals`` lists the pending proposals most likely wrong first (``ops.review_order``,
the order the review stream shows), for "show me the hardest ones".
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field
from sqlmodel import Session

from ops import findings
from ops.filters import category_of
from store.categories import get_category
from store.db import new_session
from store.findings import get_finding, list_findings
from store.masks import rle_from_mask
from store.models import Annotation, AuditFinding, Image
from tools.backends.exclusive import exclusive
from tools.edit import DryRun
from tools.pipeline import clip_to_box, load_rgb
from tools.registry import Registry, Tool, ToolContext, ToolError, ToolResult
from tools.review_order import TOOL as hardest_proposals

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
class ReviewState:
    """One review conversation's place in the queue. ``turn`` counts the person's messages."""

    current: int | None = None
    skipped: set[int] = field(default_factory=set)
    turn: int = 0


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


def _act(ctx: ToolContext, state: ReviewState, finding: AuditFinding, action: str, **kw: object) -> str:
    """Resolve ``finding`` through ``ops.findings.resolve`` (annotation change + close, one
    change) and return the next finding's line."""
    return _resolve(ctx, state, finding, action, **kw)[1]


def _resolve(
    ctx: ToolContext, state: ReviewState, finding: AuditFinding, action: str, **kw: object
) -> tuple[findings.Resolved, str]:
    done = findings.resolve(ctx.env, ctx.caller, ctx.project_id, finding.id or 0, action, **kw)  # type: ignore[arg-type]
    state.skipped.discard(finding.id)  # type: ignore[arg-type]
    with new_session(ctx.engine) as session:
        return done, _next(session, ctx, state)


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
        nxt = _act(ctx, state, finding, "accept")
        return ReviewText(done=f"finding {finding.id} accepted as is", next=nxt)

    def reject_annotation(ctx: ToolContext, args: Target) -> ReviewText:
        with new_session(ctx.engine) as session:
            finding = _finding(session, ctx, state)
            ann = _annotation(session, finding)
        return ReviewText(done=f"#{ann.id} rejected", next=_act(ctx, state, finding, "reject"))

    def relabel(ctx: ToolContext, args: RelabelArgs) -> ReviewText:
        with new_session(ctx.engine) as session:
            finding = _finding(session, ctx, state)
            ann = _annotation(session, finding)
            category = category_of(session, ctx.project_id, args.label)
            old = get_category(session, category_id=ann.category_id)
        nxt = _act(ctx, state, finding, "relabel", label=category.name)
        return ReviewText(
            done=f"#{ann.id} relabelled {old.name if old else '?'} -> {category.name}", next=nxt
        )

    def delete_annotation(ctx: ToolContext, args: Target) -> ReviewText:
        with new_session(ctx.engine) as session:
            finding = _finding(session, ctx, state)
            ann = _annotation(session, finding)
        return ReviewText(done=f"#{ann.id} deleted", next=_act(ctx, state, finding, "delete"))

    def adjust_box(ctx: ToolContext, args: BoxArgs) -> ReviewText:
        x1, y1, x2, y2 = args.box
        if x2 <= x1 or y2 <= y1:
            raise ToolError(f"box must be [x1, y1, x2, y2] with x2 > x1 and y2 > y1, got {args.box}")
        with new_session(ctx.engine) as session:
            finding = _finding(session, ctx, state)
            ann = _annotation(session, finding)
            had_mask = ann.mask is not None
        nxt = _act(ctx, state, finding, "reshape", bbox=[x1, y1, x2 - x1, y2 - y1])
        done = f"#{ann.id} box now {_box([x1, y1, x2, y2])}" + (
            " (mask dropped: resegment for a new one)" if had_mask else ""
        )
        return ReviewText(done=done, next=nxt)

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
            points = None if args.points is None else np.asarray(args.points, np.float32)
            labels = None if points is None else np.ones(len(points), np.int32)
            with exclusive(segmenter):
                segmenter.set_image(load_rgb(ctx.home, image), key=image.id)
                masks, _ = segmenter.segment(boxes=box, points=points, point_labels=labels)
            mask = np.asarray(masks[0], bool)
            if box is not None:
                mask = clip_to_box(mask, box[0])
            if not mask.any():
                raise ToolError("the segmenter found nothing there; give a tighter box or points")
        rle = rle_from_mask(mask)
        if ann is None:
            label = str(finding.evidence.get("class", ""))
            done, nxt = _resolve(ctx, state, finding, "add", label=label, mask=rle, model=segmenter.model_id)
            new = done.added
            assert new is not None
            return ReviewText(done=f"added #{new.id} {label} box {_box(new.bbox)}", next=nxt)
        nxt = _act(ctx, state, finding, "reshape", mask=rle, model=segmenter.model_id)
        return ReviewText(done=f"#{ann.id} resegmented: area {int(mask.sum())} px", next=nxt)

    def flagged(ctx: ToolContext, kind: str) -> tuple[list[int], list[int], int]:
        """(annotation ids, finding ids, images) of the open findings of ``kind``."""
        with new_session(ctx.engine) as session:
            rows = [f for f in _queue(session, ctx, state) if f.kind == kind and f.annotation_id is not None]
            rows = [f for f in rows if session.get(Annotation, f.annotation_id) is not None]
        ids = sorted({f.annotation_id for f in rows})  # type: ignore[type-var]
        return ids, [f.id for f in rows], len({f.image_id for f in rows})  # type: ignore[misc]

    def _token(kind: str, ids: list[int], finding_ids: list[int]) -> str:
        payload = json.dumps([kind, ids, sorted(finding_ids)])
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def delete_all_of_kind(ctx: ToolContext, args: BulkArgs) -> DryRun:
        ids, finding_ids, images = flagged(ctx, args.kind)
        if not ids:
            raise ToolError(f"no open {args.kind} findings with annotations")
        shown = ", ".join(f"#{i}" for i in ids[:10]) + (" ..." if len(ids) > 10 else "")
        return DryRun(
            op="delete_all_of_kind",
            token=_token(args.kind, ids, finding_ids),
            annotations=len(ids),
            images=images,
            summary=f"delete {len(ids)} annotations flagged {args.kind} on {images} images ({shown})",
        )

    def confirm_delete(ctx: ToolContext, args: BulkArgs, token: str) -> ReviewText:
        ids, finding_ids, _ = flagged(ctx, args.kind)
        if _token(args.kind, ids, finding_ids) != token:
            raise ToolError("the flagged annotations changed since the dry run; nothing was deleted")
        deleted = findings.delete_flagged(ctx.env, ctx.caller, ctx.project_id, finding_ids)
        with new_session(ctx.engine) as session:
            nxt = _next(session, ctx, state)
        return ReviewText(
            done=f"deleted {deleted} annotations flagged {args.kind} (undo reverts it)", next=nxt
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
                "Delete every annotation with an open finding of a kind (shown as a dry run first; "
                "it applies when the user confirms).",
                BulkArgs,
                delete_all_of_kind,
                mutates=True,
                confirm=confirm_delete,
            ),
            hardest_proposals,  # "show me the hardest ones": the proposals in review order
        ]
    )
