"""Correct one frame, propagate: re-follow a track from a person's fix, as one undoable change.

After a person fixed a track's box or mask on frame k, :func:`propagate_track` follows the object
from there through the later frames and replaces the track's annotations on the frames it
covered. The model work (detector, tracker, segmenter, or SAM 2.1's video predictor) comes in as
a ``follow`` callable, since ops imports only ``store`` (``tools.video_propagate`` builds one
from a model stack). It runs after the permission check and outside any open session (it takes
seconds to minutes); the writes then happen in one unit, refused if the seed annotation changed
meanwhile. That synchronous form serves the UI's button; REST queues the same work as a job
(:mod:`ops.propagation_job`), which reads the seed, checks it and writes with the same
:func:`read_seed`, :func:`check_seed` and :func:`write`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from ops.caller import Caller
from ops.errors import Conflict, Invalid
from ops.unit import Env, Unit, change, read, require
from store import tracks as repo
from store.annotations import create_annotation, delete_annotations
from store.models import Annotation, AnnotationStatus, Category, Image

PROPAGATE_TOOL = "propagate"


@dataclass(frozen=True)
class Seed:
    """Where propagation starts: the track's (corrected) annotation on frame ``frame_index``."""

    track_id: int
    label: str
    category_id: int
    image: Image
    path: Path
    frame_index: int
    bbox: list[float]  # [x, y, w, h]
    mask: dict[str, Any] | None  # COCO RLE, when the annotation has one
    # The track's box on the sampled frame just before (if it is on it): how fast it moves.
    previous_bbox: list[float] | None = None


@dataclass(frozen=True)
class Followed:
    """The object found on one later frame by a ``follow`` callable: a mask (RLE) or a box."""

    image_id: int
    mask: dict[str, Any] | None = None
    bbox: list[float] | None = None  # [x, y, w, h]; used when there is no mask
    score: float | None = None


# follow(seed, later frames as (image, path) in frame order) -> one entry per frame it looked at, in
# frame order: what it found there, or None. It ends early where it lost the object, and it is
# lazy (a generator): a job steps it one frame per item (ops.propagation_job).
Follow = Callable[[Seed, list[tuple[Image, Path]]], Iterable[Followed | None]]
EDIT = ("annotation.edit", "annotation.create", "annotation.delete", "annotation.propose")


@dataclass(frozen=True)
class Propagated:
    track_id: int
    from_frame: int
    to_frame: int  # the last frame the follower looked at (its replaced range ends there)
    created: int
    deleted: int
    batch_id: int | None
    summary: str
    model: str


def propagate_track(
    env: Env,
    caller: Caller | None,
    project_id: int,
    track_id: int,
    from_frame: int,
    *,
    follow: Follow,
    to_frame: int | None = None,
    model: str | Callable[[], str] = "",
) -> Propagated:
    """Re-follow track ``track_id`` from its annotation on ``from_frame`` through the later frames
    (up to ``to_frame``; None: the video's end) with ``follow``, and replace the track's
    annotations on the frames the follower covered with what it found, as one change.

    Frames after the follower's last covered frame keep their annotations (it stops where it
    lost the object). ``model`` names the models for the annotations' provenance; a callable is
    asked after ``follow`` ran (so a refused call never loads a model to name it).

    Raises Invalid when the track has no annotation on ``from_frame``, Conflict when that
    annotation changed while the model ran.
    """
    require(env, caller, project_id, *EDIT)
    with read(env, caller, "annotation.read", project_id) as unit:
        seed, version, frames = read_seed(unit, track_id, int(from_frame), to_frame, env.home)
    steps = list(follow(seed, frames))
    model = model() if callable(model) else model
    with change(env, caller, "annotation.edit", project_id) as unit:
        return write(unit, seed, version, frames, steps, model)


def write(
    unit: Unit,
    seed: Seed,
    version: int,
    frames: list[tuple[Image, Path]],
    steps: list[Followed | None],
    model: str,
    job_id: int | None = None,
) -> Propagated:
    """Replace the track's annotations after the seed frame, up to the last frame the follower
    found the object on, with what it found there: one change batch (one undo step), or none
    when there is nothing to replace. Refused (Conflict) when the seed changed since ``version``.
    ``job_id``: the job that followed (its output counts the new annotations)."""
    check_seed(unit, seed, version)
    frame_of = {image.id: int(image.frame_index or 0) for image, _ in frames}
    found = [item for item in steps if item is not None]
    for item in found:
        if item.image_id not in frame_of:
            raise ValueError(f"follow returned image {item.image_id}, not one of the frames it was given")
    covered = max((frame_of[item.image_id] for item in found), default=seed.frame_index)
    from ops.tracks import _frames  # here: ops.tracks re-exports this module's names

    track_id = seed.track_id
    old = [f for f in _frames(unit, track_id) if seed.frame_index < f.frame_index <= covered]
    summary = (
        f"propagate track {track_id} from frame {seed.frame_index} to {covered}: "
        f"{len(found)} annotations replace {len(old)}"
    )
    if not old and not found:
        return Propagated(track_id, seed.frame_index, covered, 0, 0, None, summary, model)
    batch = unit.batch(summary)
    if old:
        delete_annotations(unit.session, batch=batch, ids=[f.annotation_id for f in old])
    made = [
        create_annotation(
            unit.session, batch=batch, image_id=item.image_id, category_id=seed.category_id,
            bbox=None if item.mask is not None else item.bbox, mask=item.mask, score=item.score,
            status=AnnotationStatus.proposed.value, tool=PROPAGATE_TOOL, model=model,
            prompt=seed.label, track_id=track_id, agent_run_id=unit.caller.agent_run_id,
            author=unit.caller.username, job_id=job_id,
        ).id or 0
        for item in found
    ]  # fmt: skip
    if old:
        unit.event("annotation", "deleted", [f.annotation_id for f in old], data={"track_id": track_id})
    if made:
        unit.event("annotation", "created", made, data={"track_id": track_id})
    return Propagated(track_id, seed.frame_index, covered, len(made), len(old), batch.id, summary, model)


def check_seed(unit: Unit, seed: Seed, version: int) -> None:
    """Raise Conflict unless the seed annotation is still at ``version`` (a person may edit it while
    the model runs)."""
    seed_id = _seed_annotation(unit, seed.track_id, seed.frame_index)
    current = unit.session.get(Annotation, seed_id)
    if current is None or current.version != version:
        raise Conflict(
            f"annotation {seed_id} on frame {seed.frame_index} changed while propagating; run it again"
        )


def _seed_annotation(unit: Unit, track_id: int, frame_index: int) -> int:
    on = [a for f, a in repo.track_frames(unit.session, track_id=int(track_id)) if f == frame_index]
    if not on:
        have = [f for f, _ in repo.track_frames(unit.session, track_id=int(track_id))]
        span = f"frames {have[0]}..{have[-1]}" if have else "no frames"
        raise Invalid(f"track {track_id} has no annotation on frame {frame_index} to propagate from ({span})")
    return on[0]


def read_seed(
    unit: Unit, track_id: int, from_frame: int, to_frame: int | None, home: Path
) -> tuple[Seed, int, list[tuple[Image, Path]]]:
    """The seed (the track's annotation on ``from_frame``), its version, and the later frames up to
    ``to_frame`` (None: the video's end) in frame order. Raises Invalid when there is no such
    annotation or no frame after it."""
    from ops.tracks import _track

    track = _track(unit, track_id)
    ann = unit.session.get_one(Annotation, _seed_annotation(unit, track_id, from_frame))
    image = unit.session.get_one(Image, ann.image_id)
    category = unit.session.get_one(Category, ann.category_id)
    statement = select(Image).where(Image.video_id == track.video_id, col(Image.frame_index) > from_frame)
    if to_frame is not None:
        if int(to_frame) <= from_frame:
            raise Invalid(f"to_frame must be after from_frame={from_frame}, got {to_frame}")
        statement = statement.where(col(Image.frame_index) <= int(to_frame))
    later = list(unit.session.exec(statement.order_by(col(Image.frame_index))))
    if not later:
        raise Invalid(f"frame {from_frame} is the last frame to propagate to; nothing follows it")
    previous_frame = unit.session.exec(
        select(Image.frame_index)
        .where(Image.video_id == track.video_id, col(Image.frame_index) < from_frame)
        .order_by(col(Image.frame_index).desc())
        .limit(1)
    ).first()
    before = [a for f, a in repo.track_frames(unit.session, track_id=int(track_id)) if f == previous_frame]
    previous = unit.session.get_one(Annotation, before[0]).bbox if before else None
    seed = Seed(
        track.id or 0, category.name, category.id or 0, image, home / image.path, from_frame,
        list(ann.bbox), ann.mask, list(previous) if previous else None,
    )  # fmt: skip
    return seed, ann.version, [(f, home / f.path) for f in later]
