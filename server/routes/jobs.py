"""Label jobs: start (auto-label in the background), progress, list, cancel; thin adapters over
:mod:`ops.jobs`. A started job is a queued row; the server's job runner claims it from the store."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from ops import jobs
from server.deps import CallerDep, EnvDep
from store.models import JobState

router = APIRouter(prefix="/projects/{project_id}/jobs", tags=["jobs"])


class LabelJobCreate(BaseModel):
    classes: list[str] = Field(min_length=1, max_length=20, description="Classes to label, e.g. ['person'].")
    images: list[int | str] | None = Field(None, description="Image ids or file names; omit for all images.")
    threshold: float = Field(0.3, ge=0.01, le=0.99, description="Minimum detector confidence.")


def job_public(job: jobs.JobInfo) -> dict[str, Any]:
    return dataclasses.asdict(job)


@router.post("", status_code=status.HTTP_202_ACCEPTED)
def start(project_id: int, body: LabelJobCreate, env: EnvDep, caller: CallerDep) -> dict[str, Any]:
    """Queue an auto-label job; progress arrives on ``/events`` and at ``GET /jobs/{id}``."""
    return job_public(
        jobs.start_label(
            env, caller, project_id, classes=body.classes, images=body.images, threshold=body.threshold
        )
    )


@router.get("")
def list_(
    project_id: int,
    env: EnvDep,
    caller: CallerDep,
    state: JobState | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """The project's jobs, newest first."""
    return [job_public(j) for j in jobs.list_(env, caller, project_id, state=state, limit=limit)]


@router.get("/{job_id}")
def get(project_id: int, job_id: int, env: EnvDep, caller: CallerDep) -> dict[str, Any]:
    return job_public(jobs.get(env, caller, project_id, job_id))


@router.post("/{job_id}/cancel")
def cancel(project_id: int, job_id: int, env: EnvDep, caller: CallerDep) -> dict[str, Any]:
    """A queued job is cancelled at once; a running one stops after the image in flight."""
    return job_public(jobs.cancel(env, caller, project_id, job_id))


@router.post("/{job_id}/resume")
def resume(project_id: int, job_id: int, env: EnvDep, caller: CallerDep) -> dict[str, Any]:
    """Queue a cancelled or failed job again; it continues from the image it stopped at."""
    return job_public(jobs.resume(env, caller, project_id, job_id))
