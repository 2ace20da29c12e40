"""The job handler of a queued propagation (:mod:`ops.propagation_job`): one frame per item.

Item ``i`` steps the stack's follower (:func:`tools.video_propagate.follower_for`, a generator)
over frame ``params['frame_ids'][i]``; what it found stays in memory, and the last item writes it
all as one change (:func:`ops.propagation_job.finish`) in that item's transaction, with the job's
last cursor step. Once the follower lost the object the remaining items are free.

Resuming. The follower's state (the box, its speed, the last mask; SAM 2.1's memory) lives in
memory, and nothing is written before the end, so a job resumed in another process, after a
crash, or after a cancel follows again from the seed: the handler replays the frames before the
cursor (the same models on the same frames find the same objects), then goes on. The lease and
heartbeat are the runner's (:mod:`server.jobs`), as for every job.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlmodel import Session

from ops.propagation import Followed, Seed
from ops.propagation_job import KIND, finish, job_seed
from ops.unit import within
from store.models import Image, Job
from tools.auto_label import job_caller
from tools.lazy_models import ModelsOnFirstUse
from tools.video_propagate import follower_for, model_name

__all__ = ["KIND", "PropagateJob"]


@dataclass
class _Following:
    """One job's follower, stepped up to (not including) item ``next_index``."""

    job_id: int
    seed: Seed
    frames: list[tuple[Image, Path]]
    steps: Iterator[Followed | None]
    next_index: int = 0
    found: list[Followed | None] = field(default_factory=list)
    lost: bool = False

    @cached_property
    def alive(self) -> set[int | None]:
        """The ids of the frames still there when the job began (read once: a frame deleted since
        the job was queued is skipped)."""
        return {image.id for image, _ in self.frames}

    def step(self) -> None:
        if self.lost:
            return
        try:
            self.found.append(next(self.steps))
        except StopIteration:
            self.lost = True


class PropagateJob(ModelsOnFirstUse):
    """Job handler for :data:`KIND`; see the module docstring."""

    def __init__(self, *, home: Path, backends_factory: Callable[[], Any]) -> None:
        super().__init__(home=home, backends_factory=backends_factory)
        self.state: _Following | None = None
        self.stats = {"frames": 0, "replayed": 0}

    def total(self, params: dict[str, Any]) -> int:
        return len(params["frame_ids"])

    def process(self, session: Session, job: Job, index: int) -> None:
        state = self.state
        if state is None or (state.job_id, state.next_index) != (job.id, index):
            state = self.state = self._begin(session, job, index)
        frame_ids = job.params["frame_ids"]
        if frame_ids[index] in state.alive:
            state.step()
            self.stats["frames"] += 1
        state.next_index = index + 1
        if index == len(frame_ids) - 1:
            self.state = None
            with within(session, job_caller(job), job.project_id) as unit:
                finish(unit, job, state.seed, state.frames, state.found, model_name(self.backends))

    def _begin(self, session: Session, job: Job, index: int) -> _Following:
        """The follower for ``job`` stepped through the items before ``index`` (a replay when the
        job resumes: nothing of it was written)."""
        if self.state is not None:
            close = getattr(self.state.steps, "close", None)
            if close is not None:
                close()  # a job left behind (cancelled, taken over): free its model state
        with within(session, job_caller(job), job.project_id) as unit:
            seed, frames = job_seed(unit, job, self.home)
        follow = follower_for(self.backends, threshold=float(job.params["threshold"]))
        state = _Following(job.id or 0, seed, frames, iter(follow(seed, frames)))
        alive = state.alive
        for frame_id in job.params["frame_ids"][:index]:
            if frame_id in alive:
                state.step()
                self.stats["replayed"] += 1
        state.next_index = index
        return state
