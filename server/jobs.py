"""The job runner: jobs live in the store; any number of workers (threads or processes) run them.

A handler processes one item (for ``auto_label``: one image) inside the session the runner hands
it; the runner then advances the job's cursor and writes the job's progress event in that same
transaction and commits. A kill -9 therefore loses at most the item in flight and never writes
an item twice: whoever runs the job next resumes at the cursor.

Who runs a job is told by its lease in the store (``store.jobs``): a worker claims a job with a
lease of ``lease_s`` seconds, renews it from a heartbeat thread, and steps the cursor only while
the job is still its own. A worker that dies stops renewing; once its lease runs out, another
worker claims the job and resumes it. On SQLite (one host) a worker whose process is gone is
also noticed at once by its pid, so a restart after a crash resumes without waiting out the
lease. This is what lets several ``labelwright serve`` and ``labelwright worker`` processes share
one database: each job runs exactly once at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from server.job_lease import Heartbeat, process_gone, worker_name
from store import jobs
from store.db import new_session
from store.events import add_event
from store.models import Job, JobState, utcnow

ACTIVE = (JobState.queued, JobState.running)
TRANSIENT_RETRIES = 3  # an item whose transaction the database aborted (deadlock, lock timeout) is redone


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


class JobRunner:
    """Enqueue, run, cancel and resume jobs; publish progress to subscribers."""

    def __init__(
        self,
        engine: Engine,
        handlers: dict[str, JobHandler],
        *,
        lock_dir: Path | None = None,
        executor: Executor | None = None,
        poll_s: float = 0.5,
        lease_s: float = 30.0,
        worker: str | None = None,
    ) -> None:
        """A runner on ``engine``'s queue; nothing runs before ``start``, ``run_job`` or ``run_worker``.

        Args:
            handlers: job kind -> handler; this runner claims only jobs of these kinds.
            lock_dir: unused; kept so callers written for the file lock keep working (leases replaced it).
            executor: where ``start`` runs the worker loop (default: one daemon thread).
            poll_s: how often an idle worker looks for queued jobs (``enqueue`` here wakes it at once).
            lease_s: how long a claim holds without a heartbeat: a dead worker's job waits this
                long before another worker resumes it (on SQLite a dead process is noticed at once).
            worker: this runner's name in ``job.worker`` (default ``host:pid:token``).
        """
        if lease_s <= 0 or poll_s <= 0:
            raise ValueError(f"lease_s and poll_s must be > 0, got lease_s={lease_s}, poll_s={poll_s}")
        self.engine = engine
        self.handlers = handlers
        self.executor = executor or ThreadExecutor()
        self.poll_s = poll_s
        self.lease = timedelta(seconds=lease_s)
        self.worker = worker or worker_name()
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
        """Running jobs whose worker is gone go back to the queue (or to cancelled, where a cancel
        was asked for): those whose lease ran out and, on SQLite, those of dead local processes."""
        with new_session(self.engine) as session:
            released = jobs.release_expired(session)
            if self.engine.dialect.name == "sqlite":
                running = jobs.list_jobs(session, state=JobState.running, limit=10_000)
                gone = sorted({j.worker for j in running if j.worker and process_gone(j.worker)})
                released += jobs.release_expired(session, gone_workers=gone)
        return sorted(released)

    def run_job(self, job_id: int) -> Job:
        """Run one queued job to its end in the calling thread (the CLI's foreground mode).

        KeyboardInterrupt during an item rolls that item back and marks the job cancelled at its
        cursor, then re-raises.
        """
        with new_session(self.engine) as session:
            job = self._get(session, job_id)
            if job.state == JobState.running:
                raise ValueError(f"job {job_id} is being run by another process")
            if job.state != JobState.queued:
                raise ValueError(f"job {job_id} is {job.state.value}; only a queued job runs")
            if not jobs.claim_job(session, job_id=job_id, worker=self.worker, lease=self.lease):
                raise ValueError(f"job {job_id} is being run by another process")
        return self._execute(job_id, threading.Event())

    def run_worker(self, stop: threading.Event, *, exit_when_idle: bool = False) -> None:
        """Claim and run jobs in the calling thread until ``stop`` is set (``labelwright worker``);
        with ``exit_when_idle``, also return once no job is queued or running anywhere."""
        self._loop(stop, exit_when_idle=exit_when_idle)

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

    @staticmethod
    def _event(session: Session, job: Job, state: JobState, done: int, rate: float, error: str = "") -> None:
        """Stage the job's event in the outbox, in the transaction that moves the job."""
        data: dict[str, Any] = {
            "state": state.value,
            "done": done,
            "total": job.total,
            "rate": round(rate, 3),
        }
        if error:
            data["error"] = error
        add_event(
            session,
            project_id=job.project_id,
            kind="job",
            action=state.value,
            ids=[job.id or 0],
            actor=str(job.params.get("requested_by", "")),
            via="job",
            data=data,
        )

    def _finish(self, session: Session, job_id: int, state: JobState, error: str, rate: float) -> Job:
        job = self._get(session, job_id)
        if job.worker != self.worker or job.state != JobState.running:  # no longer ours: leave it be
            session.commit()
            return job
        if state == JobState.queued:  # shutting down mid-job: another worker (or the next start) resumes it
            job.state, job.worker, job.lease_until, job.updated_at = JobState.queued, "", None, utcnow()
            session.add(job)
        else:
            job = jobs.finish_job(session, job_id=job_id, state=state, error=error, commit=False) or job
        self._event(session, job, state, job.cursor, rate, error)
        session.commit()
        self._publish(job, rate)
        return job

    def _execute(self, job_id: int, stop: threading.Event) -> Job:
        heartbeat = Heartbeat(self.engine, job_id, self.worker, self.lease)
        try:
            return self._steps(job_id, stop, heartbeat.lost)
        finally:
            heartbeat.stop()

    def _steps(self, job_id: int, stop: threading.Event, lost: threading.Event) -> Job:
        started, done_here, retries = time.perf_counter(), 0, 0
        with new_session(self.engine) as session:
            job = self._get(session, job_id)
            handler = self._handler(job.kind)
            self._event(session, job, JobState.running, job.cursor, 0.0)
            session.commit()
            self._publish(job, 0.0)
            while True:
                rate = done_here / max(time.perf_counter() - started, 1e-9)
                job = self._get(session, job_id)
                if lost.is_set() or job.worker != self.worker or job.state != JobState.running:
                    session.commit()
                    return job  # taken over after our lease ran out: the new holder goes on
                if job.cancel_requested:
                    return self._finish(session, job_id, JobState.cancelled, "", rate)
                if stop.is_set():
                    return self._finish(session, job_id, JobState.queued, "", rate)
                if job.cursor >= job.total:
                    return self._finish(session, job_id, JobState.done, "", rate)
                cursor = job.cursor + 1
                try:
                    handler.process(session, job, job.cursor)
                    # the item's writes, the new cursor and its event are committed together, here
                    jobs.advance_cursor(session, job_id=job_id, worker=self.worker, cursor=cursor)
                    rate = (done_here + 1) / max(time.perf_counter() - started, 1e-9)
                    self._event(session, job, JobState.running, cursor, rate)
                    session.commit()
                except jobs.LeaseLost:
                    session.rollback()
                    return self._get(session, job_id)
                except OperationalError as exc:
                    # a deadlock victim or a lock wait that timed out: PostgreSQL aborts one of two
                    # transactions that wait on each other (e.g. this step and a cancel that locked
                    # the job row while this step held the event-order lock). Redo the item.
                    session.rollback()
                    retries += 1
                    if retries > TRANSIENT_RETRIES:
                        return self._finish(
                            session, job_id, JobState.failed, f"{type(exc).__name__}: {exc}", rate
                        )
                    time.sleep(0.05 * retries)
                    continue
                except KeyboardInterrupt:
                    session.rollback()
                    self._finish(session, job_id, JobState.cancelled, "", rate)
                    raise
                except Exception as exc:  # a bad item fails the job, resumable at its cursor
                    session.rollback()
                    return self._finish(
                        session, job_id, JobState.failed, f"{type(exc).__name__}: {exc}", rate
                    )
                done_here, retries = done_here + 1, 0
                job = self._get(session, job_id)
                self._publish(job, rate)

    def _claim(self) -> int | None:
        with new_session(self.engine) as session:
            job = jobs.claim_next_job(
                session, kinds=list(self.handlers), worker=self.worker, lease=self.lease
            )
            return None if job is None else job.id

    def _pending(self) -> bool:
        """Whether a job of our kinds is queued or running anywhere (a running one may yet be
        released to us when its worker's lease runs out)."""
        with new_session(self.engine) as session:
            return any(
                job.kind in self.handlers
                for state in ACTIVE
                for job in jobs.list_jobs(session, state=state, limit=10_000)
            )

    def _loop(self, stop: threading.Event, *, exit_when_idle: bool = False) -> None:
        last_sweep = 0.0
        while not stop.is_set():
            if (
                self.engine.dialect.name == "sqlite"
                and time.monotonic() - last_sweep > self.lease.total_seconds()
            ):
                self.requeue_stale()  # dead local workers' jobs, without waiting out their lease
                last_sweep = time.monotonic()
            job_id = self._claim()
            if job_id is None:
                if exit_when_idle and not self._pending():
                    return
                self._wake.wait(self.poll_s)
                self._wake.clear()
                continue
            self._execute(job_id, stop)
