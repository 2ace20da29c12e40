"""Jobs in the store: queued -> running -> done | failed | cancelled, resumable from ``cursor``.

The in-process worker claims jobs here; several workers (or processes) can claim concurrently
because a claim is one conditional UPDATE, which SQLite runs atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from store.models import Job, JobState, utcnow

TERMINAL = frozenset({JobState.done, JobState.failed, JobState.cancelled})


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


def claim_next_job(session: Session, *, kinds: Sequence[str] | None = None) -> Job | None:
    """Move the oldest queued job (of ``kinds``, if given) to running and return it; None if none.

    The UPDATE re-checks ``state = 'queued'``, so two workers racing for one job cannot both win.
    """
    while True:
        pick = select(Job.id).where(Job.state == JobState.queued, col(Job.cancel_requested).is_(False))
        if kinds is not None:
            pick = pick.where(col(Job.kind).in_(list(kinds)))
        job_id = session.exec(pick.order_by(col(Job.id)).limit(1)).first()
        if job_id is None:
            session.commit()
            return None
        claimed = session.exec(
            update(Job)
            .where(col(Job.id) == job_id, col(Job.state) == JobState.queued)
            .values(state=JobState.running, updated_at=utcnow())
        )
        session.commit()
        if claimed.rowcount == 1:
            return get_job(session, job_id=job_id)


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


def finish_job(session: Session, *, job_id: int, state: JobState | str, error: str = "") -> Job | None:
    """End a job in a terminal state (done, failed or cancelled), with an error text for failures."""
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
    job.updated_at = utcnow()
    session.add(job)
    session.commit()
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
    session.exec(
        update(Job)
        .where(*stale, col(Job.cancel_requested).is_(True))
        .values(state=JobState.cancelled, updated_at=now)
    )
    result = session.exec(update(Job).where(*stale).values(state=JobState.queued, updated_at=now))
    session.commit()
    return result.rowcount
