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
VIDEO = "label_video"  # frames of videos, with tracks (tools.video_label)
MAX_CLASSES = 20
ACTIVE = (JobState.queued, JobState.running)
ITEM_LISTS = ("image_ids", "frame_ids")  # params too long to show
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
            job.cancel_requested, {k: v for k, v in job.params.items() if k not in ITEM_LISTS},
            job.created_at, job.updated_at,
        )  # fmt: skip


def clean_labels(labels: Sequence[str]) -> list[str]:
    out = list(dict.fromkeys(names.class_name(label) for label in labels))
    if not out:
        raise Invalid("name at least one class to label, e.g. ['person']")
    if len(out) > MAX_CLASSES:
        raise Invalid(f"at most {MAX_CLASSES} classes per job, got {len(out)}")
    return out


def check_threshold(threshold: float) -> None:
    """A job's detector threshold is in [0.01, 0.99] (else Invalid naming it)."""
    if not 0.01 <= float(threshold) <= 0.99:
        raise Invalid(f"threshold must be in [0.01, 0.99], got {threshold!r}")


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


def video_frames(
    session: Session, project_id: int, videos: Sequence[int] | None
) -> tuple[list[int], list[int]]:
    """(video ids, frame image ids) a video job works through: every sampled frame of the videos
    (None: all of the project's), frames of one video contiguous and in frame order."""
    from store.models import Video

    found = list(session.exec(select(Video.id).where(Video.project_id == project_id).order_by(col(Video.id))))
    chosen = found if videos is None else [v for v in dict.fromkeys(videos) if v in found]
    if videos is not None and len(chosen) != len(set(videos)):
        raise NotFound(f"videos {sorted(set(videos) - set(found))} are not videos of this project")
    if not chosen:
        raise Invalid("the project has no videos to label; ingest one first (labelwright ingest clip.mp4)")
    frames = session.exec(
        select(Image.id)
        .where(col(Image.video_id).in_(chosen))
        .order_by(col(Image.video_id), col(Image.frame_index))
    )
    return [v or 0 for v in chosen], [f or 0 for f in frames]


def only_videos(session: Session, project_id: int) -> bool:
    """Whether the project holds videos and no image outside them (labeling then means tracks)."""
    from store.models import Video

    has_video = session.exec(select(Video.id).where(Video.project_id == project_id).limit(1)).first()
    plain = session.exec(
        select(func.count()).where(Image.project_id == project_id, col(Image.video_id).is_(None))
    ).one()
    return has_video is not None and plain == 0


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
    video: bool | None = False,
    videos: Sequence[int] | None = None,
) -> JobInfo:
    """Queue an auto-label job over ``images`` (ids or file names; None: every image), or, with
    ``video``, a tracking job over the frames of ``videos`` (None: all); ``video=None`` picks
    tracks when the project holds only videos.

    ``check`` is the detector's own vocabulary test (the lite detector is closed-vocabulary); it
    runs before anything is written. ``extra`` params (e.g. the model stack) go into the job.
    """
    labels = clean_labels(classes)
    check_threshold(threshold)
    if check is not None:
        try:
            check(labels)
        except ValueError as exc:
            raise Invalid(str(exc)) from None
    with change(env, caller, "job.start", project_id) as unit:
        tracks = only_videos(unit.session, project_id) if video is None else video
        params: dict[str, Any] = {"classes": labels, "threshold": float(threshold)}
        if tracks:
            if images is not None:
                raise Invalid("images picks images; a video job labels every sampled frame of the videos")
            params["video_ids"], ids = video_frames(unit.session, project_id, videos)
            params["frame_ids"] = ids
        else:
            ids = image_ids(unit.session, project_id, images)
            if not ids:
                raise Invalid("the project has no images to label; ingest some first")
            params["image_ids"] = ids
        params.update(extra or {})
        return queue(unit, VIDEO if tracks else LABEL, params, len(ids))


def queue(unit: Unit, kind: str, params: dict[str, Any], total: int) -> JobInfo:
    """Queue a job of ``kind`` in the unit's project, recording who asked and through what (its
    writes are made in that person's name), with its "queued" event: every job start ends here."""
    params = {**params, "requested_by": unit.caller.username, "via": unit.caller.via}
    if unit.caller.agent_run_id is not None:
        params["agent_run_id"] = unit.caller.agent_run_id
    job = repo.create_job(unit.session, project_id=unit.project_id, kind=kind, params=params, total=total)
    unit.event("job", "queued", [job.id or 0], data={"state": "queued", "done": 0, "total": total})
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


@dataclass(frozen=True)
class JobOutput:
    by_class: dict[str, int]  # annotations the job wrote, per class
    tracks: int  # distinct tracks among them (video jobs)


def output(env: Env, caller: Caller | None, project_id: int, job_id: int) -> JobOutput:
    """What the job wrote: the one job-summary query (CLI summary, agent report)."""
    with read(env, caller, "job.read", project_id) as unit:
        _job(unit, job_id)
        rows = unit.session.exec(
            select(Category.name, func.count())
            .select_from(Annotation)
            .join(Category, col(Category.id) == col(Annotation.category_id))
            .where(Annotation.job_id == job_id)
            .group_by(Category.name)
        ).all()
        tracks = unit.session.exec(
            select(func.count(func.distinct(Annotation.track_id))).where(Annotation.job_id == job_id)
        ).one()
        return JobOutput({name: int(n) for name, n in rows}, int(tracks or 0))


def report(env: Env, caller: Caller | None, project_id: int, job_id: int) -> str:
    """The job's outcome in one line: state, images done, proposals per class."""
    job = get(env, caller, project_id, job_id)
    found = ", ".join(
        f"{n} {name}" for name, n in sorted(output(env, caller, project_id, job_id).by_class.items())
    )
    error = f" ({job.error})" if job.error else ""
    return f"job {job_id} {job.state}: {job.done}/{job.total} images, {found or 'no objects'} proposed{error}"
