"""Tracks (one object through a video) as operations: list, rename, merge, split, delete, propagate.

Each change is one change batch (one undo step) with one event, checked against the permission
policy like any annotation change: renaming, merging and splitting move or relabel annotations
(``annotation.edit``; a new class name also needs ``category.create``), deleting a track deletes
its annotations (``annotation.delete``). The track logic itself lives in :mod:`store.tracks`;
this module adds the caller, the policy and the refusals a person reads.

Propagation (:func:`propagate_track`, in :mod:`ops.propagation`, also importable from here)
re-follows a track after a person fixed its box or mask on one frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import col, select

from ops import names
from ops.annotations import target_class
from ops.bulk import DryRun, fingerprint
from ops.caller import Caller
from ops.errors import Conflict, Invalid, NotFound
from ops.unit import Env, Unit, change, read
from store import tracks as repo
from store.models import Annotation, Category, Image, Track

PROPAGATE_TOOL = "propagate"


@dataclass(frozen=True)
class TrackInfo:
    """A track as a person sees it: its class (by name), frames and size."""

    id: int
    video_id: int
    label: str
    category_id: int
    name: str
    annotations: int
    first_frame: int
    last_frame: int


@dataclass(frozen=True)
class TrackFrame:
    """One annotation of a track: the frame it is on and its box ``[x, y, w, h]``."""

    frame_index: int
    image_id: int
    annotation_id: int
    bbox: list[float]
    category_id: int
    version: int


@dataclass(frozen=True)
class TrackChange:
    """What a track change did: ``changed`` annotations, in batch ``batch_id`` (one undo step)."""

    op: str
    track_id: int
    changed: int
    batch_id: int
    summary: str
    new_track_id: int | None = None  # split: the track holding the frames from the split on


def _track(unit: Unit, track_id: int) -> Track:
    track = repo.get_track(unit.session, project_id=unit.project_id, track_id=int(track_id))
    if track is None:
        raise NotFound(f"no track {track_id} in project {unit.project_id}")
    return track


def _infos(unit: Unit, summaries: list[repo.TrackSummary]) -> list[TrackInfo]:
    ids = {s.category_id for s in summaries}
    labels = dict(
        unit.session.exec(select(Category.id, Category.name).where(col(Category.id).in_(ids))).all()
    )
    return [
        TrackInfo(
            s.id,
            s.video_id,
            labels.get(s.category_id, ""),
            s.category_id,
            s.name,
            s.annotations,
            s.first_frame,
            s.last_frame,
        )
        for s in summaries
    ]


def _summary(unit: Unit, track_id: int) -> TrackInfo | None:
    track = _track(unit, track_id)
    found = [s for s in repo.list_tracks(unit.session, project_id=unit.project_id, video_id=track.video_id)
             if s.id == track.id]  # fmt: skip
    return _infos(unit, found)[0] if found else None


def list_tracks(
    env: Env, caller: Caller | None, project_id: int, *, video_id: int | None = None, label: str | None = None
) -> list[TrackInfo]:
    """The project's (or one video's) tracks holding annotations, in id order; ``label`` keeps
    tracks of that class (the class most of a track's annotations have)."""
    with read(env, caller, "annotation.read", project_id) as unit:
        summaries = repo.list_tracks(unit.session, project_id=project_id, video_id=video_id)
        infos = _infos(unit, summaries)
        if label is not None:
            wanted = names.class_name(label)
            infos = [t for t in infos if t.label == wanted]
        return infos


def get_track(env: Env, caller: Caller | None, project_id: int, track_id: int) -> TrackInfo:
    """One track; NotFound when it is unknown or holds no annotations (deleted)."""
    with read(env, caller, "annotation.read", project_id) as unit:
        info = _summary(unit, track_id)
        if info is None:
            raise NotFound(f"track {track_id} holds no annotations (deleted, or merged into another)")
        return info


def track_frames(env: Env, caller: Caller | None, project_id: int, track_id: int) -> list[TrackFrame]:
    """The track's annotations in frame order, with their boxes (find frames, audit, the scrubber)."""
    with read(env, caller, "annotation.read", project_id) as unit:
        _track(unit, track_id)
        return _frames(unit, int(track_id))


def _frames(unit: Unit, track_id: int) -> list[TrackFrame]:
    rows = unit.session.exec(
        select(Image.frame_index, Annotation)
        .join(Image, col(Image.id) == Annotation.image_id)
        .where(Annotation.track_id == track_id)
        .order_by(col(Image.frame_index), col(Annotation.id))
    )
    return [
        TrackFrame(int(frame or 0), a.image_id, a.id or 0, list(a.bbox), a.category_id, a.version)
        for frame, a in rows
    ]


def _done(unit: Unit, op: str, track_id: int, changed: int, summary: str, ids: list[int],
          action: str = "updated", new_track_id: int | None = None) -> TrackChange:  # fmt: skip
    batch = unit.batch(summary)
    unit.event("annotation", action, ids, data={"track_id": track_id, "op": op})
    return TrackChange(op, track_id, changed, batch.id or 0, summary, new_track_id)


def _gate(
    unit: Unit, op: str, args: dict[str, Any], ids: list[int], summary: str, confirm: str | None,
    confirm_over: int | None,
) -> DryRun | None:  # fmt: skip
    """The confirmation of :mod:`ops.bulk` for track changes: with ``confirm_over`` set, a change
    of more annotations than that returns a :class:`~ops.bulk.DryRun` (nothing written) whose
    token fingerprints the exact rows and versions; ``confirm`` with that token applies it, and
    refuses (Conflict) when the rows changed since. Without either, the change applies (the
    browser's own buttons are the person's confirmation)."""
    if confirm is None and confirm_over is None:
        return None
    token = fingerprint(unit.session, op, args, ids)
    if confirm is not None:
        if confirm != token:
            raise Conflict("the track's annotations changed since the preview; nothing was applied")
        return None
    if len(ids) > confirm_over:  # type: ignore[operator]
        return DryRun(op, token, len(ids), len(ids), summary)
    return None


def rename_track(
    env: Env, caller: Caller | None, project_id: int, track_id: int, *,
    label: str | None = None, category_id: int | None = None, confirm: str | None = None,
    confirm_over: int | None = None,
) -> TrackChange | DryRun:  # fmt: skip
    """Set the class of every annotation of the track (by name: created if new) as one change.

    ``confirm_over``/``confirm``: see :func:`_gate` (the agent's dry run for large changes).
    """
    with change(env, caller, "annotation.edit", project_id) as unit:
        track = _track(unit, track_id)
        target = target_class(
            unit, label, category_id, doing="renaming a track to a class by name",
            missing="renaming a track needs the class: label or category_id",
        )  # fmt: skip
        ids = [a for _, a in repo.track_frames(unit.session, track_id=track.id or 0)]
        if not ids:
            raise Invalid(f"track {track_id} holds no annotations; nothing to rename")
        summary = f"rename track {track_id} ({len(ids)} annotations) to {target.name!r}"
        args = {"track_id": int(track_id), "category_id": target.id}
        if (dry := _gate(unit, "rename_track", args, ids, summary, confirm, confirm_over)) is not None:
            return dry
        batch = unit.batch(summary)
        changed = repo.rename_track(
            unit.session, batch=batch, track_id=track.id or 0, category_id=target.id or 0
        )
        return _done(unit, "rename", track.id or 0, changed, summary, ids)


def merge_tracks(
    env: Env, caller: Caller | None, project_id: int, *, into: int, others: Sequence[int],
    confirm: str | None = None, confirm_over: int | None = None,
) -> TrackChange | DryRun:  # fmt: skip
    """Move the annotations of ``others`` onto track ``into`` (same video, no shared frame)."""
    if not others:
        raise Invalid("merge needs the tracks to merge into the first: give at least one other track")
    with change(env, caller, "annotation.edit", project_id) as unit:
        target = _track(unit, into)
        sources = [_track(unit, t).id or 0 for t in others]
        moving = [
            a for t in sources if t != target.id for _, a in repo.track_frames(unit.session, track_id=t)
        ]
        summary = f"merge track{'s' * (len(sources) > 1)} {', '.join(map(str, sources))} into track {into}"
        args = {"into": int(into), "others": sources}
        if (dry := _gate(unit, "merge_tracks", args, moving, summary, confirm, confirm_over)) is not None:
            return dry
        batch = unit.batch(summary)
        changed = repo.merge_tracks(unit.session, batch=batch, into=target.id or 0, others=sources)
        return _done(unit, "merge", target.id or 0, changed, f"{summary} ({changed} annotations)", moving)


def split_track(
    env: Env, caller: Caller | None, project_id: int, track_id: int, *, frame_index: int,
    confirm: str | None = None, confirm_over: int | None = None,
) -> TrackChange | DryRun:  # fmt: skip
    """Move the track's annotations from ``frame_index`` on to a new track (same class)."""
    with change(env, caller, "annotation.edit", project_id) as unit:
        track = _track(unit, track_id)
        later = [
            a for f, a in repo.track_frames(unit.session, track_id=track.id or 0) if f >= int(frame_index)
        ]
        summary = f"split track {track_id} at frame {frame_index}"
        args = {"track_id": int(track_id), "frame_index": int(frame_index)}
        what = f"{summary} ({len(later)} annotations to a new track)"
        if (dry := _gate(unit, "split_track", args, later, what, confirm, confirm_over)) is not None:
            return dry
        batch = unit.batch(summary)
        new = repo.split_track(
            unit.session, batch=batch, track_id=track.id or 0, frame_index=int(frame_index)
        )
        what = f"{summary} ({len(later)} annotations to track {new.id})"
        return _done(unit, "split", track.id or 0, len(later), what, later, new_track_id=new.id)


def delete_track(
    env: Env, caller: Caller | None, project_id: int, track_id: int, *,
    confirm: str | None = None, confirm_over: int | None = None,
) -> TrackChange | DryRun:  # fmt: skip
    """Delete every annotation of the track as one change (undo brings them back)."""
    with change(env, caller, "annotation.delete", project_id) as unit:
        track = _track(unit, track_id)
        ids = [a for _, a in repo.track_frames(unit.session, track_id=track.id or 0)]
        if not ids:
            raise Invalid(f"track {track_id} holds no annotations; nothing to delete")
        summary = f"delete track {track_id} ({len(ids)} annotations)"
        args = {"track_id": int(track_id)}
        if (dry := _gate(unit, "delete_track", args, ids, summary, confirm, confirm_over)) is not None:
            return dry
        batch = unit.batch(summary)
        changed = repo.delete_track(unit.session, batch=batch, track_id=track.id or 0)
        return _done(unit, "delete", track.id or 0, changed, summary, ids, action="deleted")


# Propagation lives in its own module (one concept each); its names stay importable from here.
from ops.propagation import Follow, Followed, Propagated, Seed, propagate_track  # noqa: E402

__all__ = [
    "Follow", "Followed", "Propagated", "Seed", "TrackChange", "TrackFrame", "TrackInfo", "delete_track",
    "get_track", "list_tracks", "merge_tracks", "propagate_track", "rename_track", "split_track",
    "track_frames",
]  # fmt: skip
