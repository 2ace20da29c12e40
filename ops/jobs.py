"""Jobs: start a labeling job (one set of checks for every surface), cancel, resume, read them.

A job is a row in the store; whichever worker runs jobs (the server's in-process runner, a
``labelwright worker``, the CLI in the foreground) claims it there. The job records who asked
(``requested_by``) and through what, so its annotations are written under that person's name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from ops import names
from ops.caller import Caller
from ops.errors import Conflict, Invalid, NotFound
from ops.filters import image_of
from ops.unit import Env, Unit, change, read
from store import jobs as repo
from store.models import Annotation, Category, Image, Job, JobState, utcnow

LABEL = "auto_label"
MAX_CLASSES = 20
ACTIVE = (JobState.queued, JobState.running)
LabelCheck = Callable[[list[str]], None]  # raises ValueError naming labels the detector cannot find


@dataclass(frozen=True)
class JobInfo:
    id: int
    project_id: int
    kind: str
    state: str
    done: int
    total: int
    error: str
    cancel_requested: bool
    params: dict[str, Any]
    created_at: Any
    updated_at: Any

    @classmethod
    def of(cls, job: Job) -> JobInfo:
        return cls(
            job.id or 0, job.project_id, job.kind, job.state.value, job.cursor, job.total, job.error,
            job.cancel_requested, {k: v for k, v in job.params.items() if k != "image_ids"},
            job.created_at, job.updated_at,
        )  # fmt: skip


def clean_labels(labels: Sequence[str]) -> list[str]:
    out = list(dict.fromkeys(names.class_name(label) for label in labels))
    if not out:
        raise Invalid("name at least one class to label, e.g. ['person']")
    if len(out) > MAX_CLASSES:
        raise Invalid(f"at most {MAX_CLASSES} classes per job, got {len(out)}")
    return out


def _job(unit: Unit, job_id: int) -> Job:
    job = repo.get_job(unit.session, job_id=job_id)
    if job is None or job.project_id != unit.project_id:
        raise NotFound(f"no job {job_id} in project {unit.project_id}")
    return job


def image_ids(session: Session, project_id: int, images: Sequence[int | str] | None) -> list[int]:
    """The ids a job over ``images`` (None: every image, in id order) works through."""
    if images is None:
        return list(
            session.exec(select(Image.id).where(Image.project_id == project_id).order_by(col(Image.id)))
        )
    return list(dict.fromkeys(image_of(session, project_id, ref).id or 0 for ref in images))


def start_label(
    env: Env,
    caller: Caller | None,
    project_id: int,
    *,
    classes: Sequence[str],
    images: Sequence[int | str] | None = None,
    threshold: float = 0.3,
    check: LabelCheck | None = None,
    extra: dict[str, Any] | None = None,
) -> JobInfo:
    """Queue an auto-label job over ``images`` (ids or file names; None: every image).

    ``check`` is the detector's own vocabulary test (the lite detector is closed-vocabulary); it
    runs before anything is written. ``extra`` params (e.g. the model stack) go into the job.
    """
    labels = clean_labels(classes)
    if not 0.01 <= float(threshold) <= 0.99:
        raise Invalid(f"threshold must be in [0.01, 0.99], got {threshold!r}")
    if check is not None:
        try:
            check(labels)
        except ValueError as exc:
            raise Invalid(str(exc)) from None
    with change(env, caller, "job.start", project_id) as unit:
        if images is None:
            ids = list(
                unit.session.exec(
                    select(Image.id).where(Image.project_id == project_id).order_by(col(Image.id))
                )
            )
        else:
            ids = list(dict.fromkeys(image_of(unit.session, project_id, ref).id for ref in images))
        if not ids:
            raise Invalid("the project has no images to label; ingest some first")
        params: dict[str, Any] = {"classes": labels, "image_ids": ids, "threshold": float(threshold)}
        params.update(extra or {})
        params["requested_by"] = unit.caller.username
        params["via"] = unit.caller.via
        if unit.caller.agent_run_id is not None:
            params["agent_run_id"] = unit.caller.agent_run_id
        job = repo.create_job(unit.session, project_id=project_id, kind=LABEL, params=params, total=len(ids))
        unit.event("job", "queued", [job.id or 0], data={"state": "queued", "done": 0, "total": len(ids)})
        return JobInfo.of(job)


def cancel(env: Env, caller: Caller | None, project_id: int, job_id: int) -> JobInfo:
    """A queued job is cancelled at once; a running one stops after the item in flight."""
    with change(env, caller, "job.cancel", project_id) as unit:
        job = _job(unit, job_id)
        if job.state not in ACTIVE:
            raise Conflict(f"job {job_id} is {job.state.value}; only queued or running jobs cancel")
        job.cancel_requested = True
        if job.state == JobState.queued:
            job.state = JobState.cancelled
        job.updated_at = utcnow()
        unit.session.add(job)
        unit.event("job", "cancel", [job_id], data={"state": job.state.value})
        return JobInfo.of(job)


def resume(env: Env, caller: Caller | None, project_id: int, job_id: int) -> JobInfo:
    """Queue a cancelled or failed job again; it continues from its cursor."""
    with change(env, caller, "job.start", project_id) as unit:
        job = _job(unit, job_id)
        if job.state not in (JobState.cancelled, JobState.failed, JobState.queued):
            raise Conflict(f"job {job_id} is {job.state.value}; only cancelled or failed jobs resume")
        job.state, job.cancel_requested, job.error, job.updated_at = JobState.queued, False, "", utcnow()
        unit.session.add(job)
        unit.event(
            "job", "queued", [job_id], data={"state": "queued", "done": job.cursor, "total": job.total}
        )
        return JobInfo.of(job)


def get(env: Env, caller: Caller | None, project_id: int, job_id: int) -> JobInfo:
    with read(env, caller, "job.read", project_id) as unit:
        return JobInfo.of(_job(unit, job_id))


def list_(
    env: Env, caller: Caller | None, project_id: int, *, state: JobState | str | None = None,
    kind: str | None = None, limit: int = 100,
) -> list[JobInfo]:  # fmt: skip
    with read(env, caller, "job.read", project_id) as unit:
        rows = repo.list_jobs(unit.session, project_id=project_id, state=state, kind=kind, limit=limit)
        return [JobInfo.of(j) for j in rows]


def active(env: Env, caller: Caller | None, project_id: int) -> JobInfo | None:
    """The project's newest running (else queued) job, e.g. one the agent started."""
    with read(env, caller, "job.read", project_id) as unit:
        for state in (JobState.running, JobState.queued):
            rows = repo.list_jobs(unit.session, project_id=project_id, state=state, limit=1)
            if rows:
                return JobInfo.of(rows[0])
    return None


def proposals_by_class(env: Env, caller: Caller | None, project_id: int, job_id: int) -> dict[str, int]:
    """How many annotations the job wrote, per class: the one job-summary query."""
    with read(env, caller, "job.read", project_id) as unit:
        _job(unit, job_id)
        rows = unit.session.exec(
            select(Category.name, func.count())
            .select_from(Annotation)
            .join(Category, col(Category.id) == col(Annotation.category_id))
            .where(Annotation.job_id == job_id)
            .group_by(Category.name)
        ).all()
        return {name: int(n) for name, n in rows}


def report(env: Env, caller: Caller | None, project_id: int, job_id: int) -> str:
    """The job's outcome in one line: state, images done, proposals per class."""
    job = get(env, caller, project_id, job_id)
    found = ", ".join(
        f"{n} {name}" for name, n in sorted(proposals_by_class(env, caller, project_id, job_id).items())
    )
    error = f" ({job.error})" if job.error else ""
    return f"job {job_id} {job.state}: {job.done}/{job.total} images, {found or 'no objects'} proposed{error}"
