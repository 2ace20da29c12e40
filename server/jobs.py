"""The job runner: jobs live in the store, one in-process worker runs them item by item.

A handler processes one item (for ``auto_label``: one image) inside the session the runner hands
it; the runner then advances the job's cursor in that same transaction and commits. A kill -9
therefore loses at most the item in flight and never writes an item twice: a restart resumes at
the cursor.

Which process owns a running job is told by an OS file lock (``<lock_dir>/<job id>.lock``) held
while it runs: the kernel drops it when the process dies, so "running but unlocked" means its
process is gone, and :meth:`JobRunner.start` (or a rerun of ``labelwright label``) requeues it at
once, with no heartbeat timeout to wait out. Where runs are spread over machines (the Ray
executor to come) a heartbeat column replaces the lock; handlers and tools do not change.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.engine import Engine
from sqlmodel import Session

from store import jobs
from store.db import new_session
from store.models import Job, JobState, utcnow

ACTIVE = (JobState.queued, JobState.running)


class JobHandler(Protocol):
    """Runs one kind of job: how many items its params name, and how to process one of them."""

    def total(self, params: dict[str, Any]) -> int: ...

    def process(self, session: Session, job: Job, index: int) -> None: ...


@dataclass(frozen=True)
class ProgressEvent:
    job_id: int
    kind: str
    state: str
    done: int
    total: int
    rate: float  # items per second in this run
    error: str = ""


Subscriber = Callable[[ProgressEvent], None]


class Executor(Protocol):
    """Where the worker loop runs: a thread here; a Ray driver later."""

    def start(self, loop: Callable[[threading.Event], None]) -> None: ...

    def stop(self, timeout: float | None = None) -> None: ...


class ThreadExecutor:
    """One daemon worker thread (SQLite has one writer anyway)."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, loop: Callable[[threading.Event], None]) -> None:
        if self._thread is not None:
            raise RuntimeError("executor already started")
        self._stop.clear()
        self._thread = threading.Thread(target=loop, args=(self._stop,), name="labelwright-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


class _JobLock:
    """An exclusive, non-blocking flock on the job's lock file; released when the process dies."""

    def __init__(self, lock_dir: Path, job_id: int) -> None:
        lock_dir.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(lock_dir / f"{job_id}.lock", os.O_RDWR | os.O_CREAT, 0o644)

    def acquire(self) -> bool:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)


class JobRunner:
    """Enqueue, run, cancel and resume jobs; publish progress to subscribers."""

    def __init__(
        self,
        engine: Engine,
        handlers: dict[str, JobHandler],
        *,
        lock_dir: Path,
        executor: Executor | None = None,
        poll_s: float = 0.5,
    ) -> None:
        self.engine = engine
        self.handlers = handlers
        self.lock_dir = lock_dir
        self.executor = executor or ThreadExecutor()
        self.poll_s = poll_s
        self._subscribers: list[Subscriber] = []
        self._wake = threading.Event()

    # -- public API -------------------------------------------------------------------------

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Call ``fn`` on every progress event (from the worker thread); returns an unsubscribe."""
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn)

    def start(self) -> None:
        self.requeue_stale()
        self.executor.start(self._loop)

    def stop(self, timeout: float | None = 10.0) -> None:
        self._wake.set()
        self.executor.stop(timeout)

    def enqueue(self, project_id: int, kind: str, params: dict[str, Any]) -> int:
        total = self._handler(kind).total(params)
        with new_session(self.engine) as session:
            job = jobs.create_job(session, project_id=project_id, kind=kind, params=params, total=total)
            session.commit()
        self._wake.set()
        assert job.id is not None
        return job.id

    def cancel(self, job_id: int) -> Job:
        """A queued job is cancelled now; a running one stops after the item in flight."""
        with new_session(self.engine) as session:
            job = self._get(session, job_id)
            if job.state not in ACTIVE:
                raise ValueError(f"job {job_id} is {job.state.value}; only queued or running jobs cancel")
            return jobs.request_cancel(session, job_id=job_id) or job

    def resume(self, job_id: int) -> Job:
        """Requeue a cancelled, failed or stale running job; it continues from its cursor."""
        self.requeue_stale()
        with new_session(self.engine) as session:
            job = self._get(session, job_id)
            if job.state not in (JobState.cancelled, JobState.failed, JobState.queued):
                raise ValueError(f"job {job_id} is {job.state.value}; only cancelled or failed jobs resume")
            job.state, job.cancel_requested, job.error, job.updated_at = JobState.queued, False, "", utcnow()
            session.add(job)
            session.commit()
        self._wake.set()
        return job

    def requeue_stale(self) -> list[int]:
        """Jobs marked running whose process is gone (their lock is free) go back to the queue
        (or to cancelled, where a cancel was asked for)."""
        requeued: list[int] = []
        with new_session(self.engine) as session:
            for job in jobs.list_jobs(session, state=JobState.running, limit=10_000):
                lock = _JobLock(self.lock_dir, job.id or 0)
                if lock.acquire():
                    job.state = JobState.cancelled if job.cancel_requested else JobState.queued
                    job.updated_at = utcnow()
                    session.add(job)
                    session.commit()
                    requeued.append(job.id or 0)
                lock.release()
        return requeued

    def run_job(self, job_id: int) -> Job:
        """Run one queued job to its end in the calling thread (the CLI's foreground mode).

        KeyboardInterrupt during an item rolls that item back and marks the job cancelled at its
        cursor, then re-raises.
        """
        lock = _JobLock(self.lock_dir, job_id)
        try:
            if not lock.acquire():
                raise ValueError(f"job {job_id} is being run by another process")
            with new_session(self.engine) as session:
                job = self._get(session, job_id)
                if job.state != JobState.queued:
                    raise ValueError(f"job {job_id} is {job.state.value}; only a queued job runs")
                job.state, job.updated_at = JobState.running, utcnow()
                session.add(job)
                session.commit()
            return self._execute(job_id, threading.Event())
        finally:
            lock.release()

    # -- internals --------------------------------------------------------------------------

    def _handler(self, kind: str) -> JobHandler:
        if kind not in self.handlers:
            raise ValueError(f"no handler for job kind {kind!r}; known: {', '.join(sorted(self.handlers))}")
        return self.handlers[kind]

    @staticmethod
    def _get(session: Session, job_id: int) -> Job:
        job = jobs.get_job(session, job_id=job_id)
        if job is None:
            raise ValueError(f"no job with id {job_id}")
        return job

    def _publish(self, job: Job, rate: float) -> None:
        event = ProgressEvent(
            job.id or 0, job.kind, job.state.value, job.cursor, job.total, round(rate, 3), job.error
        )
        for fn in list(self._subscribers):
            fn(event)

    def _finish(self, session: Session, job_id: int, state: JobState, error: str, rate: float) -> Job:
        if state == JobState.queued:  # shutting down mid-job: the next start resumes it
            job = self._get(session, job_id)
            job.state, job.updated_at = JobState.queued, utcnow()
            session.add(job)
            session.commit()
        else:
            job = jobs.finish_job(session, job_id=job_id, state=state, error=error) or self._get(
                session, job_id
            )
        self._publish(job, rate)
        return job

    def _execute(self, job_id: int, stop: threading.Event) -> Job:
        started, done_here = time.perf_counter(), 0
        with new_session(self.engine) as session:
            job = self._get(session, job_id)
            handler = self._handler(job.kind)
            self._publish(job, 0.0)
            while True:
                rate = done_here / max(time.perf_counter() - started, 1e-9)
                job = self._get(session, job_id)
                if job.cancel_requested:
                    return self._finish(session, job_id, JobState.cancelled, "", rate)
                if stop.is_set():
                    return self._finish(session, job_id, JobState.queued, "", rate)
                if job.cursor >= job.total:
                    return self._finish(session, job_id, JobState.done, "", rate)
                try:
                    handler.process(session, job, job.cursor)
                    # the item's writes and the new cursor are committed together, here
                    job = jobs.update_progress(session, job_id=job_id, cursor=job.cursor + 1) or job
                except KeyboardInterrupt:
                    session.rollback()
                    self._finish(session, job_id, JobState.cancelled, "", rate)
                    raise
                except Exception as exc:  # a bad item fails the job, resumable at its cursor
                    session.rollback()
                    return self._finish(
                        session, job_id, JobState.failed, f"{type(exc).__name__}: {exc}", rate
                    )
                done_here += 1
                self._publish(job, done_here / max(time.perf_counter() - started, 1e-9))

    def _claim(self) -> tuple[int, _JobLock] | None:
        with new_session(self.engine) as session:
            job = jobs.claim_next_job(session, kinds=list(self.handlers))
            if job is None or job.id is None:
                return None
            lock = _JobLock(self.lock_dir, job.id)
            if not lock.acquire():  # cannot happen unless another runner shares our lock dir badly
                lock.release()
                return None
            return job.id, lock

    def _loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            claimed = self._claim()
            if claimed is None:
                self._wake.wait(self.poll_s)
                self._wake.clear()
                continue
            job_id, lock = claimed
            try:
                self._execute(job_id, stop)
            finally:
                lock.release()
