"""Jobs in the store: queued -> running -> done | failed | cancelled, resumable from ``cursor``.

A queue that any number of worker processes share. A claim picks the oldest queued job and
moves it to running under the claimer's name (``worker``) with a lease (``lease_until``): on
PostgreSQL the pick is ``SELECT ... FOR UPDATE SKIP LOCKED``, so concurrent claimers take
different jobs without waiting on each other; on SQLite the database's single write lock makes
the conditional UPDATE atomic. Either way the UPDATE re-checks the job is still claimable, so two
workers can never both win one job. A worker renews its lease by heartbeat (``renew_lease``);
a running job whose lease ran out goes back to the queue (``release_expired``) and the next
claimer resumes it at its cursor. Every cursor step is conditional on the lease holder
(``advance_cursor``): a worker that lost its job cannot commit an item the new holder redoes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from store.models import Job, JobState, utcnow

TERMINAL = frozenset({JobState.done, JobState.failed, JobState.cancelled})
DEFAULT_LEASE = timedelta(seconds=30)


class LeaseLost(RuntimeError):
    """The job is no longer this worker's (its lease ran out and another worker took it over,
    or it was requeued): the item in flight must be rolled back, not committed."""


def create_job(
    session: Session, *, project_id: int, kind: str, params: dict[str, Any] | None = None, total: int = 0
) -> Job:
    """Queue a job (flushes; the caller commits, so the job and its event land together)."""
    if not kind:
        raise ValueError("job kind must be a non-empty string, got ''")
    job = Job(project_id=project_id, kind=kind, params=params or {}, total=total)
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, *, job_id: int) -> Job | None:
    # populate_existing: another session or process (the worker) may have moved the job on.
    return session.get(Job, job_id, populate_existing=True)


def claim_next_job(
    session: Session,
    *,
    kinds: Sequence[str] | None = None,
    worker: str = "",
    lease: timedelta = DEFAULT_LEASE,
) -> Job | None:
    """Move the oldest queued job (of ``kinds``, if given) to running for ``worker`` with a lease
    of ``lease``, and return it; None if there is none. Jobs whose lease ran out are released first.
    """
    release_expired(session)
    while True:
        pick = select(Job.id).where(Job.state == JobState.queued, col(Job.cancel_requested).is_(False))
        if kinds is not None:
            pick = pick.where(col(Job.kind).in_(list(kinds)))
        # PostgreSQL: lock the picked row and skip rows other claimers hold; SQLite ignores this.
        pick = pick.order_by(col(Job.id)).limit(1).with_for_update(skip_locked=True)
        job_id = session.exec(pick).first()
        if job_id is None:
            session.commit()
            return None
        if _take(session, job_id, worker, lease, states=(JobState.queued,)):
            return get_job(session, job_id=job_id)


def claim_job(session: Session, *, job_id: int, worker: str = "", lease: timedelta = DEFAULT_LEASE) -> bool:
    """Claim one named queued job for ``worker`` (the CLI's foreground run); False if not queued."""
    return _take(session, job_id, worker, lease, states=(JobState.queued,))


def _take(
    session: Session, job_id: int, worker: str, lease: timedelta, *, states: Sequence[JobState]
) -> bool:
    now = utcnow()
    claimed = session.exec(
        update(Job)
        .where(col(Job.id) == job_id, col(Job.state).in_(list(states)), col(Job.cancel_requested).is_(False))
        .values(state=JobState.running, worker=worker, lease_until=now + lease, updated_at=now)
    )
    session.commit()
    return claimed.rowcount == 1


def renew_lease(session: Session, *, job_id: int, worker: str, lease: timedelta = DEFAULT_LEASE) -> bool:
    """Extend ``worker``'s lease on its running job; False when the job is no longer its own."""
    renewed = session.exec(
        update(Job)
        .where(col(Job.id) == job_id, col(Job.worker) == worker, col(Job.state) == JobState.running)
        .values(lease_until=utcnow() + lease)
    )
    session.commit()
    return renewed.rowcount == 1


def release_expired(session: Session, *, gone_workers: Sequence[str] | None = None) -> list[int]:
    """Running jobs whose lease ran out (or that have none: written before leases existed) go back
    to the queue, or to cancelled where a cancel was asked for. With ``gone_workers``, the running
    jobs of those workers are released whatever their lease (they are known to be dead). Commits;
    returns the ids released."""
    if gone_workers is not None and not gone_workers:
        return []
    now = utcnow()
    stale = [col(Job.state) == JobState.running]
    if gone_workers is None:
        stale.append(or_(col(Job.lease_until).is_(None), col(Job.lease_until) < now))
    else:
        stale.append(col(Job.worker).in_(list(gone_workers)))
    released = list(session.exec(select(Job.id).where(*stale).order_by(col(Job.id))))
    if released:
        free = {"worker": "", "lease_until": None, "updated_at": now}
        stale.append(col(Job.id).in_(released))
        session.exec(
            update(Job)
            .where(*stale, col(Job.cancel_requested).is_(True))
            .values(state=JobState.cancelled, **free)
        )
        session.exec(update(Job).where(*stale).values(state=JobState.queued, **free))
    session.commit()
    return [int(i) for i in released]


def advance_cursor(session: Session, *, job_id: int, worker: str, cursor: int) -> None:
    """Stage the step of ``worker``'s running job from ``cursor - 1`` to ``cursor`` in the session's
    transaction (with the item's writes; the caller commits). Flushes, never commits.

    Raises:
        LeaseLost: the job is not running under ``worker`` at ``cursor - 1`` any more.
    """
    stepped = session.exec(
        update(Job)
        .where(
            col(Job.id) == job_id,
            col(Job.worker) == worker,
            col(Job.state) == JobState.running,
            col(Job.cursor) == cursor - 1,
        )
        .values(cursor=cursor, updated_at=utcnow())
    )
    if stepped.rowcount != 1:
        raise LeaseLost(f"job {job_id} is no longer run by {worker!r} at cursor {cursor - 1}")


def update_progress(session: Session, *, job_id: int, cursor: int, total: int | None = None) -> Job | None:
    """Record that the first ``cursor`` items are done; the returned job says if cancel was requested."""
    job = get_job(session, job_id=job_id)
    if job is None:
        return None
    if cursor < 0 or (total if total is not None else job.total) < 0:
        raise ValueError(f"cursor and total must be >= 0, got cursor={cursor}, total={total}")
    job.cursor = cursor
    if total is not None:
        job.total = total
    job.updated_at = utcnow()
    session.add(job)
    session.commit()
    return job


def request_cancel(session: Session, *, job_id: int) -> Job | None:
    """Cancel a queued job now; ask a running one to stop (its worker sees ``cancel_requested``)."""
    job = get_job(session, job_id=job_id)
    if job is None or job.state in TERMINAL:
        return job
    job.cancel_requested = True
    if job.state == JobState.queued:
        job.state = JobState.cancelled
    job.updated_at = utcnow()
    session.add(job)
    session.commit()
    return job


def finish_job(
    session: Session, *, job_id: int, state: JobState | str, error: str = "", commit: bool = True
) -> Job | None:
    """End a job in a terminal state (done, failed or cancelled), with an error text for failures.

    ``commit=False`` stages it (flushed) for the caller's transaction, e.g. beside its event."""
    final = JobState(state)
    if final not in TERMINAL:
        raise ValueError(
            f"finish state must be one of {sorted(s.value for s in TERMINAL)}, got {final.value!r}"
        )
    job = get_job(session, job_id=job_id)
    if job is None:
        return None
    job.state = final
    job.error = error
    job.worker, job.lease_until = "", None
    job.updated_at = utcnow()
    session.add(job)
    session.commit() if commit else session.flush()
    return job


def list_jobs(
    session: Session,
    *,
    project_id: int | None = None,
    state: JobState | str | None = None,
    kind: str | None = None,
    limit: int = 100,
) -> list[Job]:
    """Jobs, newest first."""
    statement = select(Job)
    if project_id is not None:
        statement = statement.where(Job.project_id == project_id)
    if state is not None:
        statement = statement.where(Job.state == JobState(state))
    if kind is not None:
        statement = statement.where(Job.kind == kind)
    statement = statement.order_by(col(Job.id).desc()).limit(limit).execution_options(populate_existing=True)
    return list(session.exec(statement))


def requeue_stale_running(session: Session, *, older_than: timedelta | None = None) -> int:
    """Put running jobs back in the queue (crash recovery); they resume from their cursor.

    With ``older_than=None`` every running job is requeued: right for the embedded worker at start,
    when no job can be running yet. Otherwise only jobs without progress for that long. A job whose
    cancel was requested is cancelled instead. Returns how many jobs were requeued.
    """
    stale = [col(Job.state) == JobState.running]
    if older_than is not None:
        cutoff: datetime = utcnow() - older_than
        stale.append(col(Job.updated_at) < cutoff)
    now = utcnow()
    free = {"worker": "", "lease_until": None, "updated_at": now}
    session.exec(
        update(Job)
        .where(*stale, col(Job.cancel_requested).is_(True))
        .values(state=JobState.cancelled, **free)
    )
    result = session.exec(update(Job).where(*stale).values(state=JobState.queued, **free))
    session.commit()
    return result.rowcount
