"""Labeling on Ray: model actors compute, the process holding the job's lease writes.

Each actor builds one model stack (detector, segmenter, verifier) once, in its constructor, and
then answers batches of images with :class:`tools.pipeline.Inference` objects: plain data, no
database. :class:`RayLabelJob` is the ``auto_label`` handler the job runner calls once per item,
exactly like :class:`tools.auto_label.LabelJob`; it keeps a window of batches in flight on the
actors ahead of the cursor and, for item ``i``, waits for that image's inference and writes it
through the same operation (``tools.pipeline.write``) in the runner's per-item transaction. So
the cursor, the lease check, cancel and progress are the runner's, unchanged, and a job
interrupted anywhere (driver killed, actor killed) resumes with nothing lost or written twice:
an actor's answer only counts once the driver has committed it with the cursor.

An actor that dies (its process killed, its node lost) is replaced by a fresh one and its
batches are sent again; inference has no side effects, so computing an image twice is harmless.

Ray is imported lazily: nothing here loads it until a pool is made.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlmodel import Session

from ops.unit import within
from store.models import Image, Job
from tools.auto_label import KIND, LabelJob, check_labels, job_caller, with_detector
from tools.pipeline import Inference, infer_batch, write

Item = tuple[int, bytes | None]  # (image id, the stored file's bytes; None: image deleted)


class ModelActor:
    """One model stack, built once; ``ray.remote`` turns this class into the actor class."""

    def __init__(self, backends_factory: Callable[[], Any]) -> None:
        self.backends = backends_factory()
        self._detectors: dict[str, Any] = {}  # jobs' own detectors, built here once each

    def pid(self) -> int:
        return os.getpid()

    def check(self, labels: list[str]) -> None:
        """The detector's vocabulary check (ValueError naming what it can detect)."""
        check_labels(self.backends.detector, labels)

    def own_detector(self, wanted: str) -> str:
        """Build the job's detector ``wanted`` here (once); its model id."""
        return str(with_detector(self.backends, wanted, self._detectors).detector.model_id)

    def infer_batch(
        self, items: list[Item], labels: list[str], threshold: float, detector: str | None = None
    ) -> list[Inference | None]:
        """The images' inferences, each model called once for the batch where it takes batches
        (``tools.pipeline.infer_batch``: an actor on a GPU is kept busy); None for a deleted image.
        ``detector``: the job's own detector (``params['detector']``), built on this actor once."""
        from PIL import Image as PILImage

        decoded: dict[int, tuple[np.ndarray, float]] = {}
        for k, (_, data) in enumerate(items):
            if data is None:
                continue
            t = time.perf_counter()
            with PILImage.open(io.BytesIO(data)) as im:  # ingest stored it EXIF-oriented already
                decoded[k] = (np.asarray(im.convert("RGB")), time.perf_counter() - t)
        backends = with_detector(self.backends, detector, self._detectors)
        found = infer_batch(
            backends, [rgb for rgb, _ in decoded.values()], labels, threshold,
            [items[k][0] for k in decoded],
        )  # fmt: skip
        out: list[Inference | None] = [None] * len(items)
        for k, inference in zip(decoded, found, strict=True):
            inference.timings["decode"] = decoded[k][1]
            out[k] = inference
        return out


@dataclass(frozen=True)
class RayOptions:
    """How the actors are laid out: ``replicas`` actors of ``cpus``/``gpus`` each, images sent
    ``batch`` at a time with up to ``window`` batches in flight per replica."""

    replicas: int = 1
    gpus: float = 0.0
    cpus: float = 1.0
    batch: int = 4
    window: int = 2
    max_replacements: int = 8  # actor deaths tolerated per pool before the job fails (resumable)
    timeout_s: float = 600.0  # one batch's wait before the job fails (resumable)

    def __post_init__(self) -> None:
        checks = {
            "replicas": self.replicas >= 1, "gpus": self.gpus >= 0, "cpus": self.cpus > 0,
            "batch": self.batch >= 1, "window": self.window >= 1, "timeout_s": self.timeout_s > 0,
        }  # fmt: skip
        bad = [f"{name}={getattr(self, name)!r}" for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(
                "Ray options must be replicas >= 1, gpus >= 0, cpus > 0, batch >= 1, window >= 1, "
                f"timeout_s > 0; got {', '.join(bad)}"
            )


class ActorPool:
    """``replicas`` model actors; a dead one is replaced on demand (at most ``max_replacements``)."""

    def __init__(self, backends_factory: Callable[[], Any], options: RayOptions) -> None:
        import ray

        self.options = options
        self._factory = backends_factory
        self._cls = ray.remote(ModelActor).options(
            num_cpus=options.cpus, num_gpus=options.gpus, max_restarts=0, max_task_retries=0
        )
        self.actors = [self._cls.remote(backends_factory) for _ in range(options.replicas)]
        self.replaced = 0
        # each actor's process id; asking also waits until every stack is built (an error there shows now)
        self.pids: list[int] = ray.get([a.pid.remote() for a in self.actors], timeout=options.timeout_s)

    def replace(self, slot: int) -> None:
        import ray

        if self.replaced >= self.options.max_replacements:
            raise RuntimeError(
                f"{self.replaced} model actors died in this pool (at most {self.options.max_replacements} "
                "are replaced); the job stops at its cursor and resumes when run again"
            )
        ray.kill(self.actors[slot], no_restart=True)
        self.actors[slot] = self._cls.remote(self._factory)
        self.replaced += 1
        self.pids[slot] = ray.get(self.actors[slot].pid.remote(), timeout=self.options.timeout_s)

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors = []


class RayLabelJob(LabelJob):
    """The ``auto_label`` handler whose models run on Ray actors (see the module docstring)."""

    def __init__(
        self, *, home: Path, backends_factory: Callable[[], Any], options: RayOptions | None = None
    ) -> None:
        super().__init__(home=home, backends_factory=backends_factory)
        self.options = options or RayOptions()
        self._pool: ActorPool | None = None
        self._job: int | None = None
        self._next = 0  # next item index to send
        self._flight: dict[int, tuple[Any, int, list[int]]] = {}  # first index -> (ref, slot, indexes)
        self._batch_of: dict[int, int] = {}  # item index -> first index of its batch
        self._ready: dict[int, Inference | None] = {}
        self.sent = 0  # images sent to actors (more than the job's items where a batch was resent)

    @property
    def pool(self) -> ActorPool:
        if self._pool is None:
            self._pool = ActorPool(self.backends_factory, self.options)
        return self._pool

    @property
    def backends(self) -> Any:
        raise RuntimeError("a Ray label job's models live on its actors; use check_labels or process")

    def check_labels(self, labels: list[str]) -> None:
        """The detector's vocabulary check, asked of an actor (the driver loads no model)."""
        import ray

        ray.get(self.pool.actors[0].check.remote(labels), timeout=self.options.timeout_s)

    def close(self) -> None:
        """Kill the actors (their models go with them); a later item makes new ones."""
        self._reset(None)
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def refuse_unsupported(self, job: Job) -> None:
        """ValueError (or ModelMissing) for a job the actors cannot run as asked, before any image
        is sent, so nothing is written.

        A job's own detector (``params['detector']``, e.g. a project's trained one) is built on
        each actor from its models dir; asking one actor to build it first shows a missing file
        now. An example detector (``params['examples']``) is built from the project's store, which
        actors cannot read, so such a job fails with what to do: it resumes on an in-process worker.
        """
        import ray

        if job.params.get("examples"):
            raise ValueError(
                "a label-by-example job reads its examples from the project's store, which Ray "
                "actors cannot; resume it on a worker without --executor ray"
            )
        wanted = job.params.get("detector")
        if wanted:
            ray.get(self.pool.actors[0].own_detector.remote(wanted), timeout=self.options.timeout_s)

    def process(self, session: Session, job: Job, index: int) -> None:
        image = self.todo(session, job, index)
        if image is None:
            return
        if self._job != job.id:
            self.refuse_unsupported(job)
        inference = self._inference(session, job, index)
        if inference is None:
            return
        with within(session, job_caller(job), job.project_id) as unit:
            self.last = write(
                unit, image=image, inference=inference, labels=job.params["classes"],
                threshold=float(job.params["threshold"]), job_id=job.id, tool=KIND,
            )  # fmt: skip

    # -- the window of batches in flight ------------------------------------------------------

    def _reset(self, job_id: int | None) -> None:
        # Batches in flight are forgotten, not cancelled: ``ray.cancel`` would interrupt a model in
        # the middle of a call (a KeyboardInterrupt in the actor) and can kill the actor with its
        # stack; their answers are simply never read (``close`` ends the actors).
        self._job, self._next = job_id, 0
        self._flight, self._batch_of, self._ready = {}, {}, {}

    def _inference(self, session: Session, job: Job, index: int) -> Inference | None:
        if self._job != job.id or (index not in self._ready and index not in self._batch_of):
            self._reset(job.id)  # a new job, or a resume at another cursor
            self._next = index
        self._fill(session, job)
        while index not in self._ready:
            self._collect(session, job, self._batch_of[index])
        self._batch_of.pop(index, None)
        return self._ready.pop(index)

    def _fill(self, session: Session, job: Job) -> None:
        total = len(job.params["image_ids"])
        limit = self.options.replicas * self.options.window
        while len(self._flight) < limit and self._next < total:
            indexes = list(range(self._next, min(self._next + self.options.batch, total)))
            self._next = indexes[-1] + 1
            self._send(session, job, indexes, slot=(indexes[0] // self.options.batch) % self.options.replicas)

    def _send(self, session: Session, job: Job, indexes: list[int], slot: int) -> None:
        items: list[Item] = []
        for i in indexes:
            image_id = job.params["image_ids"][i]
            image = session.get(Image, image_id)
            items.append((image_id, None if image is None else (self.home / image.path).read_bytes()))
            self._batch_of[i] = indexes[0]
        actor = self.pool.actors[slot]
        ref = actor.infer_batch.remote(
            items, job.params["classes"], float(job.params["threshold"]), job.params.get("detector")
        )
        self._flight[indexes[0]] = (ref, slot, indexes)
        self.sent += len(indexes)

    def _collect(self, session: Session, job: Job, first: int) -> None:
        import ray
        from ray.exceptions import RayActorError, WorkerCrashedError

        ref, slot, indexes = self._flight.pop(first)
        try:
            answers = ray.get(ref, timeout=self.options.timeout_s)
        except (RayActorError, WorkerCrashedError):
            try:
                self.pool.replace(slot)  # the actor is gone: a fresh one takes its batches, this one first
                self._send(session, job, indexes, slot)
                self._resend(session, job, slot, skip=first)
            except BaseException:
                self._reset(None)
                raise
            return
        except BaseException:  # the models failed on an image, a timeout, Ctrl-C: the job stops at its
            self._reset(None)  # cursor; a resume starts a fresh window there
            raise
        for i, answer in zip(indexes, answers, strict=True):
            self._ready[i] = answer

    def _resend(self, session: Session, job: Job, slot: int, skip: int) -> None:
        """Batches queued on a dead actor go to its replacement."""
        for first, (_, was, indexes) in list(self._flight.items()):
            if was == slot and first != skip:
                del self._flight[first]
                self._send(session, job, indexes, slot)
