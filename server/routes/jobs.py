"""Label jobs: start (auto-label in the background), progress, list, cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel, Field
from sqlmodel import Session

from server.deps import Annotator, SessionDep, Viewer, not_found
from store.jobs import get_job, list_jobs
from store.models import Job, JobState
from tools.auto_label import KIND, clean_labels, job_params
from tools.registry import ToolError

router = APIRouter(prefix="/projects/{project_id}/jobs", tags=["jobs"])


class LabelJobCreate(BaseModel):
    classes: list[str] = Field(min_length=1, max_length=20, description="Classes to label, e.g. ['person'].")
    images: list[int | str] | None = Field(None, description="Image ids or file names; omit for all images.")
    threshold: float = Field(0.3, ge=0.01, le=0.99, description="Minimum detector confidence.")


def job_public(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "project_id": job.project_id,
        "kind": job.kind,
        "state": job.state.value,
        "done": job.cursor,
        "total": job.total,
        "error": job.error,
        "cancel_requested": job.cancel_requested,
        "params": {k: v for k, v in job.params.items() if k != "image_ids"},
        "created_at": job.created_at,
        "updated_at": job.updated_at,
    }


def project_job(session: Session, project_id: int, job_id: int) -> Job:
    job = get_job(session, job_id=job_id)
    if job is None or job.project_id != project_id:
        raise not_found(f"job {job_id} in project {project_id}")
    return job


@router.post("", status_code=status.HTTP_202_ACCEPTED)
def start(body: LabelJobCreate, request: Request, access: Annotator, session: SessionDep) -> dict[str, Any]:
    """Queue an auto-label job; progress arrives on ``/events`` and at ``GET /jobs/{id}``."""
    classes = clean_labels(body.classes)
    try:
        params = job_params(
            session,
            project_id=access.project_id,
            classes=classes,
            images=body.images,
            threshold=body.threshold,
        )
    except (ToolError, ValueError) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    params["requested_by"] = access.actor
    job_id = request.app.state.runner.enqueue(access.project_id, KIND, params)
    return job_public(project_job(session, access.project_id, job_id))


@router.get("")
def list_(
    access: Viewer,
    session: SessionDep,
    state: JobState | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """The project's jobs, newest first."""
    return [job_public(j) for j in list_jobs(session, project_id=access.project_id, state=state, limit=limit)]


@router.get("/{job_id}")
def get(job_id: int, access: Viewer, session: SessionDep) -> dict[str, Any]:
    return job_public(project_job(session, access.project_id, job_id))


@router.post("/{job_id}/cancel")
def cancel(job_id: int, request: Request, access: Annotator, session: SessionDep) -> dict[str, Any]:
    """A queued job is cancelled at once; a running one stops after the image in flight."""
    project_job(session, access.project_id, job_id)
    try:
        job = request.app.state.runner.cancel(job_id)
    except ValueError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return job_public(job)
