"""Videos, their frames, and tracks (one object through a video), as thin adapters over
:mod:`ops.videos`, :mod:`ops.tracks` and :mod:`ops.propagation_job`.

Every track change (rename, merge, split, delete, propagate) is one change batch: ``POST
/history/undo`` reverts it whole. Propagate queues a job (it takes about a second per frame):
the server's job runner follows the track from its annotation on ``from_frame`` with the model
stack and replaces its later annotations when it is done.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ops import propagation_job, tracks, videos
from server.deps import CallerDep, EnvDep
from server.routes.schema import Id, Name, errors

router = APIRouter(prefix="/projects/{project_id}", tags=["videos"], responses=errors())

TRACK_EXAMPLE = {
    "id": 3, "video_id": 1, "label": "person", "category_id": 2, "name": "person 3", "annotations": 40,
    "first_frame": 0, "last_frame": 39,
}  # fmt: skip
CHANGE_EXAMPLE = {
    "op": "split", "track_id": 3, "changed": 20, "batch_id": 57,
    "summary": "split track 3 at frame 20 (20 annotations to track 9)", "new_track_id": 9,
}  # fmt: skip


def _ok(description: str, example: Any) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": description, "content": {"application/json": {"example": example}}}}


class TrackRename(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: Name | None = Field(None, min_length=1, description="The new class by name (created if new).")
    category_id: Id | None = Field(None, description="Or the new class by id.")

    @model_validator(mode="after")
    def _one(self) -> TrackRename:
        if (self.label is None) == (self.category_id is None):
            raise ValueError("give the new class as label or category_id (one of them)")
        return self


class TrackMerge(BaseModel):
    model_config = ConfigDict(extra="forbid")

    into: Id = Field(description="The track that keeps its id.")
    others: list[Id] = Field(
        min_length=1, max_length=1000, description="Tracks whose annotations move to it."
    )


class TrackSplit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    frame_index: Id = Field(description="The first frame of the new track (a source frame index).")


class TrackPropagate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_frame: Id = Field(description="The frame whose (corrected) box or mask is followed.")
    to_frame: Id | None = Field(None, description="The last frame to propagate to; default: the video's end.")
    threshold: float = Field(0.3, ge=0.01, le=0.99, description="Detector threshold on the later frames.")


@router.get(
    "/videos", responses=_ok("The project's videos.", [{"id": 1, "file_name": "street.mp4", "frames": 398}])
)
def list_videos(project_id: Id, env: EnvDep, caller: CallerDep) -> list[dict[str, Any]]:
    """The project's videos with `frames` (sampled frames stored), `annotated_frames` and `tracks`."""
    return [asdict(v) for v in videos.list_videos(env, caller, project_id)]


@router.get("/videos/{video_id}")
def get_video(project_id: Id, video_id: Id, env: EnvDep, caller: CallerDep) -> dict[str, Any]:
    return asdict(videos.get_video(env, caller, project_id, video_id))


@router.get(
    "/videos/{video_id}/frames",
    responses=_ok("Frames in order.", [{"image_id": 7, "frame_index": 0, "timestamp_s": 0.0,
                                         "file_name": "street.mp4/frame_000000.jpg", "annotations": 3}]),
)  # fmt: skip
def list_frames(
    project_id: Id,
    video_id: Id,
    env: EnvDep,
    caller: CallerDep,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 100_000,
) -> list[dict[str, Any]]:
    """The video's sampled frames in frame order: image id (for `/images/{id}/file`), source frame
    index, time and annotation count."""
    return [
        asdict(f) for f in videos.list_frames(env, caller, project_id, video_id, offset=offset, limit=limit)
    ]


@router.get("/tracks", responses=_ok("Tracks in id order.", [TRACK_EXAMPLE]))
def list_tracks(
    project_id: Id,
    env: EnvDep,
    caller: CallerDep,
    video_id: Id | None = None,
    label: Annotated[Name | None, Query(min_length=1)] = None,
) -> list[dict[str, Any]]:
    """Tracks holding annotations (of one video, of one class), with their frame span."""
    return [asdict(t) for t in tracks.list_tracks(env, caller, project_id, video_id=video_id, label=label)]


@router.get("/tracks/{track_id}", responses=_ok("The track and its frames.", {**TRACK_EXAMPLE, "frames": []}))
def get_track(project_id: Id, track_id: Id, env: EnvDep, caller: CallerDep) -> dict[str, Any]:
    """One track with `frames`: per annotation its frame index, image id, annotation id and box."""
    info = tracks.get_track(env, caller, project_id, track_id)
    frames = tracks.track_frames(env, caller, project_id, track_id)
    return {**asdict(info), "frames": [asdict(f) for f in frames]}


@router.patch("/tracks/{track_id}", responses=_ok("What changed (one undo step).", CHANGE_EXAMPLE))
def rename_track(
    project_id: Id, track_id: Id, body: TrackRename, env: EnvDep, caller: CallerDep
) -> dict[str, Any]:
    """Set the class of every annotation of the track."""
    done = tracks.rename_track(
        env, caller, project_id, track_id, label=body.label, category_id=body.category_id
    )
    return asdict(done)


@router.post("/tracks/merge", responses=_ok("What changed (one undo step).", CHANGE_EXAMPLE))
def merge_tracks(project_id: Id, body: TrackMerge, env: EnvDep, caller: CallerDep) -> dict[str, Any]:
    """Move the annotations of `others` onto track `into` (same video; no frame in both)."""
    return asdict(tracks.merge_tracks(env, caller, project_id, into=body.into, others=body.others))


@router.post("/tracks/{track_id}/split", responses=_ok("What changed; `new_track_id`.", CHANGE_EXAMPLE))
def split_track(
    project_id: Id, track_id: Id, body: TrackSplit, env: EnvDep, caller: CallerDep
) -> dict[str, Any]:
    """Move the track's annotations from `frame_index` on to a new track."""
    return asdict(tracks.split_track(env, caller, project_id, track_id, frame_index=body.frame_index))


@router.delete("/tracks/{track_id}", responses=_ok("What changed (one undo step).", CHANGE_EXAMPLE))
def delete_track(project_id: Id, track_id: Id, env: EnvDep, caller: CallerDep) -> dict[str, Any]:
    """Delete every annotation of the track (undo brings them back)."""
    return asdict(tracks.delete_track(env, caller, project_id, track_id))


PROPAGATE_JOB_EXAMPLE = {
    "id": 12, "project_id": 1, "kind": "propagate_track", "state": "queued", "done": 0, "total": 21,
    "error": "", "cancel_requested": False,
    "params": {"track_id": 3, "from_frame": 40, "to_frame": None, "threshold": 0.3, "seed_version": 2,
               "requested_by": "ana", "via": "api"},
    "created_at": "2026-12-01T16:00:00", "updated_at": "2026-12-01T16:00:00",
}  # fmt: skip


@router.post(
    "/tracks/{track_id}/propagate",
    status_code=status.HTTP_202_ACCEPTED,
    responses={202: {
        "description": "The queued propagation job: follow it at `GET /jobs/{id}` (or `/events`); once "
        "done, its `params.result` says what it replaced (one undo step).",
        "content": {"application/json": {"example": PROPAGATE_JOB_EXAMPLE}},
    }},
)  # fmt: skip
def propagate_track(
    project_id: Id, track_id: Id, body: TrackPropagate, env: EnvDep, caller: CallerDep
) -> dict[str, Any]:
    """Queue the re-following of the track from its annotation on `from_frame` (after you corrected
    it) through the later frames with the model stack. When the job is done, the track's
    annotations up to where it lost the object are replaced, as one undo step; a cancelled or
    failed job changes nothing. Cancel it at `POST /jobs/{id}/cancel`."""
    job = propagation_job.start_propagation(
        env, caller, project_id, track_id, body.from_frame, to_frame=body.to_frame, threshold=body.threshold
    )
    return asdict(job)
