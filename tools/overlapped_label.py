"""Labeling with the stages overlapped: decode, the models and the writes of a job run at once.

The job runner calls its handler once per item and commits each image's annotations with the
cursor; in the plain :class:`tools.auto_label.LabelJob` the models then wait for the decode and
for the database, and a GPU idles between images. :class:`OverlappedLabelJob` keeps that
contract (the runner's cursor, lease, cancel and progress, unchanged) and runs ahead of it:

- a decode thread reads and decodes the job's images, ``prefetch`` ahead into a bounded queue;
- a model thread takes up to ``batch`` decoded images at a time and runs them through
  :func:`tools.pipeline.infer_batch` (YOLO-World, SAM 2.1 and CLIP each called once per batch);
  at most ``ahead`` answers wait unwritten, so memory stays bounded;
- the runner's thread, in ``process``, takes item ``i``'s answer and writes it
  (:func:`tools.pipeline.write`) while the models work on the next batch.

Nothing but the runner's thread touches the database. An answer counts only once the runner
committed it with the cursor, so a job killed anywhere resumes with nothing lost or doubled:
answers computed ahead are recomputed (inference has no side effects). A failure on the model
or decode thread fails the item it belongs to, like the in-process handler, and the job stays
resumable at its cursor.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlmodel import Session, col, select

from ops.unit import within
from store.models import Image, Job
from tools.auto_label import KIND, LabelJob, job_caller
from tools.pipeline import Inference, infer_batch, read_rgb, write

STALL_S = 120.0  # threads whose answers nobody takes for this long end (a cancelled job's)
WAIT_S = 0.1  # how often a blocked thread looks at its stop flag


@dataclass
class Busy:
    """Seconds each thread spent working (not waiting), for the benchmark's "model time / wall"."""

    decode: float = 0.0
    models: float = 0.0
    write: float = 0.0
    batches: list[int] = field(default_factory=list)  # images per model call


class Lookahead:
    """The decode and model threads for one run of one job, from one cursor on."""

    def __init__(
        self,
        backends: Any,
        items: list[tuple[int, int, Path | None]],  # (item index, image id, stored file or None)
        labels: list[str],
        threshold: float,
        *,
        batch: int,
        prefetch: int,
        ahead: int,
        busy: Busy,
    ) -> None:
        self.first = items[0][0] if items else 0
        self.end = self.first + len(items)  # items are the job's, in order, from ``first`` on
        self._next = self.first  # the next item the runner may take; answers before it are stale
        self._backends, self._labels, self._threshold = backends, labels, threshold
        self._batch, self._ahead, self.busy = batch, ahead, busy
        self._items = items
        self._decoded: queue.Queue[tuple[int, int, np.ndarray | BaseException | None]] = queue.Queue(prefetch)
        self._answers: dict[int, Inference | BaseException | None] = {}
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._last_take = time.monotonic()
        self._threads = [
            threading.Thread(target=self._guard(self._decode), name="label-decode", daemon=True),
            threading.Thread(target=self._guard(self._infer), name="label-models", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def covers(self, index: int) -> bool:
        """Whether this run will still answer item ``index``: not past it yet, and alive or ended
        by a failure (which :meth:`take` raises to the runner rather than starting over)."""
        alive = not self._stop.is_set() or self._failure is not None
        return alive and self._next <= index < self.end

    def take(self, index: int, timeout_s: float) -> Inference | None:
        """Item ``index``'s answer (None: its image is gone); raises what computing it raised."""
        deadline = time.monotonic() + timeout_s
        with self._ready:
            for skipped in [i for i in self._answers if i < index]:  # items the runner skipped
                del self._answers[skipped]
            self._next = index + 1
            while index not in self._answers:
                if self._stop.is_set():
                    if self._failure is not None:
                        raise self._failure
                    raise RuntimeError("the labeling threads stopped before this image was computed")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no answer for item {index} after {timeout_s:.0f} s")
                self._ready.wait(min(left, WAIT_S * 10))
            answer = self._answers.pop(index)
            self._last_take = time.monotonic()
            self._ready.notify_all()
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def stop(self) -> None:
        self._stop.set()
        with self._ready:
            self._ready.notify_all()

    # -- the threads ----------------------------------------------------------------------

    def _guard(self, body: Callable[[], None]) -> Callable[[], None]:
        """A thread's body; what kills it (a KeyboardInterrupt a model raised, a bug) ends the run
        and is raised again to the runner by :meth:`take`, so the job stops the way it would have."""

        def run() -> None:
            try:
                body()
            except _Stopped:
                pass
            except BaseException as exc:
                self._failure = exc
                self.stop()

        return run

    def _put(self, item: tuple[int, int, np.ndarray | BaseException | None]) -> None:
        while True:
            self._check()
            try:
                self._decoded.put(item, timeout=WAIT_S)
                return
            except queue.Full:
                continue

    def _check(self) -> None:
        if self._stop.is_set():
            raise _Stopped

    def _wait_for_room(self) -> None:
        """Block while ``ahead`` answers wait unwritten; end the run when nobody has taken one
        for :data:`STALL_S` (the job was cancelled, failed or moved on without :meth:`stop`)."""
        full_since = time.monotonic()
        with self._ready:
            while len(self._answers) >= self._ahead:
                self._check()
                if time.monotonic() - max(self._last_take, full_since) > STALL_S:
                    self._stop.set()
                    self._ready.notify_all()
                    raise _Stopped
                self._ready.wait(WAIT_S)

    def _decode(self) -> None:
        for index, image_id, path in self._items:
            self._check()
            t = time.perf_counter()
            try:
                rgb: np.ndarray | BaseException | None = None if path is None else read_rgb(path)
            except Exception as exc:  # a missing or broken file fails its own item, in order
                rgb = exc
            self.busy.decode += time.perf_counter() - t
            self._put((index, image_id, rgb))

    def _next_batch(self) -> list[tuple[int, int, np.ndarray | BaseException | None]]:
        taken: list[tuple[int, int, np.ndarray | BaseException | None]] = []
        while not taken:
            self._check()
            try:
                taken.append(self._decoded.get(timeout=WAIT_S))
            except queue.Empty:
                continue
        while len(taken) < self._batch:  # whatever else is decoded already; never wait for more
            try:
                taken.append(self._decoded.get_nowait())
            except queue.Empty:
                break
        return taken

    def _infer(self) -> None:
        left = len(self._items)
        while left:
            taken = self._next_batch()
            left -= len(taken)
            self._wait_for_room()
            ready = [(i, image_id, rgb) for i, image_id, rgb in taken if isinstance(rgb, np.ndarray)]
            answers: dict[int, Inference | BaseException | None] = {
                i: rgb for i, _, rgb in taken if not isinstance(rgb, np.ndarray)
            }
            t = time.perf_counter()
            answers.update(self._answer(ready))
            self.busy.models += time.perf_counter() - t
            with self._ready:
                self._answers.update(answers)
                self._ready.notify_all()

    def _answer(
        self, ready: list[tuple[int, int, np.ndarray]]
    ) -> dict[int, Inference | BaseException | None]:
        """Each item's inference, or the exception computing it raised. A batch that fails (out
        of GPU memory, one bad image) is retried image by image, so only the image that fails
        fails, as in the plain handler, and a transient failure costs nothing."""
        if not ready:
            return {}
        try:
            results = infer_batch(
                self._backends, [rgb for _, _, rgb in ready], self._labels, self._threshold,
                [image_id for _, image_id, _ in ready],
            )  # fmt: skip
        except Exception as exc:
            if len(ready) == 1:
                return {ready[0][0]: exc}
            out: dict[int, Inference | BaseException | None] = {}
            for item in ready:
                out.update(self._answer([item]))
            return out
        self.busy.batches.append(len(ready))
        return {i: r for (i, _, _), r in zip(ready, results, strict=True)}


class _Stopped(Exception):
    """Raised inside a thread to end it."""


class OverlappedLabelJob(LabelJob):
    """The ``auto_label`` handler with decode, models and writes overlapped (module docstring).

    Args:
        batch: Images per model call; ``None`` picks 8 when the stack's detector runs on CUDA
            and 1 otherwise. With 1 it is exactly :class:`LabelJob` (nothing runs ahead).
        prefetch: Decoded images queued ahead of the models.
        ahead: Answers computed ahead of the writes, at most (bounds memory: masks are kept).
        timeout_s: Longest wait for one image's answer before the job fails (resumable).
    """

    def __init__(
        self,
        *,
        home: Path,
        backends_factory: Callable[[], Any],
        batch: int | None = None,
        prefetch: int | None = None,
        ahead: int | None = None,
        timeout_s: float = 600.0,
    ) -> None:
        super().__init__(home=home, backends_factory=backends_factory)
        for name, value in (("batch", batch), ("prefetch", prefetch), ("ahead", ahead)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self._batch, self._prefetch, self._ahead, self.timeout_s = batch, prefetch, ahead, timeout_s
        self._run: Lookahead | None = None
        self._run_job: int | None = None
        self.busy = Busy()

    @property
    def batch(self) -> int:
        """Images per model call: as given, else 8 on a CUDA detector and 1 elsewhere."""
        if self._batch is not None:
            return self._batch
        device = str(getattr(self.backends.detector, "device", "cpu"))
        return 8 if device.startswith("cuda") else 1

    def close(self) -> None:
        """Stop the threads (a later item starts them again at its cursor)."""
        if self._run is not None:
            self._run.stop()
        self._run, self._run_job = None, None

    def process(self, session: Session, job: Job, index: int) -> None:
        if self.batch == 1:
            super().process(session, job, index)
            return
        image = self.todo(session, job, index)
        if image is None:
            return
        if self._run is None or self._run_job != job.id or not self._run.covers(index):
            self._start(session, job, index)
        assert self._run is not None
        inference = self._run.take(index, self.timeout_s)
        if inference is None:
            return
        t = time.perf_counter()
        with within(session, job_caller(job), job.project_id) as unit:
            self.last = write(
                unit, image=image, inference=inference, labels=job.params["classes"],
                threshold=float(job.params["threshold"]), job_id=job.id, tool=KIND,
            )  # fmt: skip
        self.busy.write += time.perf_counter() - t

    def _start(self, session: Session, job: Job, index: int) -> None:
        """Threads for ``job`` from item ``index`` on (a new job, or a resume at another cursor)."""
        self.close()
        ids = job.params["image_ids"][index:]
        paths: dict[int, str] = {}
        for start in range(0, len(ids), 10_000):  # one query per 10k images, not one per image
            chunk = ids[start : start + 10_000]
            paths.update(session.exec(select(Image.id, Image.path).where(col(Image.id).in_(chunk))).all())  # type: ignore[arg-type]
        items = [
            (index + k, image_id, None if image_id not in paths else self.home / paths[image_id])
            for k, image_id in enumerate(ids)
        ]
        batch = self.batch
        self._run = Lookahead(
            self.backends_for(job, session), items, job.params["classes"], float(job.params["threshold"]),
            batch=batch, prefetch=self._prefetch or 2 * batch, ahead=self._ahead or 2 * batch, busy=self.busy,
        )  # fmt: skip
        self._run_job = job.id
