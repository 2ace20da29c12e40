"""Propagation as a background job: queue it now, follow the frames in a worker, write once.

Following a track takes about a second per frame on the lite stack, too long for a request.
:func:`start_propagation` checks what :func:`ops.propagation.propagate_track` checks (the same
permissions, a seed annotation on ``from_frame``, frames after it) and queues a job whose item
``i`` is frame ``params['frame_ids'][i]``; the handler (:class:`tools.propagate_job.PropagateJob`)
follows one frame per item and writes nothing until the last item, where :func:`finish` replaces
the track's annotations as one change batch (one undo step) in that item's transaction. So:

- progress, cancel and resume are the jobs' own (``/jobs/{id}``, ``labelwright jobs``);
- a cancelled or failed propagation changes nothing;
- a propagation whose seed annotation a person edited meanwhile fails with a Conflict, writing
  nothing (start it again from the new seed).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from ops.caller import Caller
from ops.jobs import JobInfo, check_threshold, queue
from ops.propagation import EDIT, Followed, Propagated, Seed, check_seed, read_seed, write
from ops.unit import Env, Unit, change, require
from store.models import Image, Job

KIND = "propagate_track"


def start_propagation(
    env: Env,
    caller: Caller | None,
    project_id: int,
    track_id: int,
    from_frame: int,
    *,
    to_frame: int | None = None,
    threshold: float = 0.3,
) -> JobInfo:
    """Queue the re-following of ``track_id`` from its annotation on ``from_frame`` (up to
    ``to_frame``; None: the video's end). Raises what the synchronous path raises before any
    model work: Forbidden, NotFound, Invalid."""
    check_threshold(threshold)
    require(env, caller, project_id, *EDIT, "job.start")
    with change(env, caller, "annotation.edit", project_id) as unit:
        seed, version, frames = read_seed(unit, track_id, int(from_frame), to_frame, env.home)
        params: dict[str, Any] = {
            "track_id": seed.track_id, "from_frame": seed.frame_index, "to_frame": to_frame,
            "threshold": float(threshold), "seed_version": version,
            "frame_ids": [image.id or 0 for image, _ in frames],
        }  # fmt: skip
        return queue(unit, KIND, params, len(frames))


def job_seed(unit: Unit, job: Job, home: Path) -> tuple[Seed, list[tuple[Image, Path]]]:
    """The job's seed and the frames still there (in frame order, only those it was queued with),
    read again for a worker; raises Conflict when the seed changed since the job was queued."""
    p = job.params
    seed, _, frames = read_seed(unit, int(p["track_id"]), int(p["from_frame"]), p["to_frame"], home)
    check_seed(unit, seed, int(p["seed_version"]))
    queued = set(p["frame_ids"])
    return seed, [(image, path) for image, path in frames if image.id in queued]


def finish(
    unit: Unit,
    job: Job,
    seed: Seed,
    frames: list[tuple[Image, Path]],
    steps: list[Followed | None],
    model: str,
) -> Propagated:
    """Write what the follower found (:func:`ops.propagation.write`) and keep the outcome in the
    job's params (``result``), for ``GET /jobs/{id}`` to show what was replaced."""
    done = write(unit, seed, int(job.params["seed_version"]), frames, steps, model, job_id=job.id)
    job.params = {**job.params, "result": asdict(done)}
    unit.session.add(job)
    return done
