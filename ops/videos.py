"""Videos of a project and their sampled frames, for the frame scrubber, the API and the agent.

A video's frames are ``Image`` rows naming it (``store.video_ingest``); reading them needs what
reading images needs (``image.read``). Frame counts and the annotations per frame come from one
grouped query each, never a query per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import col, select

from ops.caller import Caller
from ops.errors import NotFound
from ops.unit import Env, Unit, read
from store.models import Annotation, Image, Video


@dataclass(frozen=True)
class VideoInfo:
    """A video as stored, with how many of its frames were sampled (``frames``) and annotated."""

    id: int
    file_name: str
    fps: float
    sample_fps: float | None
    frame_count: int  # decoded frames of the source
    duration_s: float
    width: int
    height: int
    frames: int  # sampled frames stored as images
    annotated_frames: int
    tracks: int  # distinct tracks holding annotations


@dataclass(frozen=True)
class FrameInfo:
    """One sampled frame: its image id, index among the decoded frames, time, and annotations."""

    image_id: int
    frame_index: int
    timestamp_s: float | None
    file_name: str
    annotations: int


def _video(unit: Unit, video_id: int) -> Video:
    video = unit.session.get(Video, int(video_id))
    if video is None or video.project_id != unit.project_id:
        raise NotFound(f"no video {video_id} in project {unit.project_id}")
    return video


def list_videos(env: Env, caller: Caller | None, project_id: int) -> list[VideoInfo]:
    """The project's videos in id order, with their sampled, annotated frame and track counts."""
    with read(env, caller, "image.read", project_id) as unit:
        videos = list(
            unit.session.exec(select(Video).where(Video.project_id == project_id).order_by(col(Video.id)))
        )
        frames = dict(
            unit.session.exec(
                select(Image.video_id, func.count())
                .where(Image.project_id == project_id, col(Image.video_id).is_not(None))
                .group_by(Image.video_id)
            ).all()
        )
        per_video = (
            select(
                Image.video_id,
                func.count(func.distinct(Annotation.image_id)),
                func.count(func.distinct(Annotation.track_id)),
            )
            .join(Image, col(Image.id) == Annotation.image_id)
            .where(Annotation.project_id == project_id, col(Image.video_id).is_not(None))
            .group_by(Image.video_id)
        )
        annotated = {v: (int(n), int(t)) for v, n, t in unit.session.exec(per_video)}
        return [
            VideoInfo(
                v.id or 0,
                v.file_name,
                v.fps,
                v.sample_fps,
                v.frame_count,
                v.duration_s,
                v.width,
                v.height,
                int(frames.get(v.id, 0)),
                *annotated.get(v.id, (0, 0)),
            )  # fmt: skip
            for v in videos
        ]


def get_video(env: Env, caller: Caller | None, project_id: int, video_id: int) -> VideoInfo:
    """One video of the project; NotFound otherwise."""
    for info in list_videos(env, caller, project_id):
        if info.id == int(video_id):
            return info
    raise NotFound(f"no video {video_id} in project {project_id}")


def list_frames(
    env: Env, caller: Caller | None, project_id: int, video_id: int, *, offset: int = 0, limit: int = 100_000
) -> list[FrameInfo]:
    """The video's sampled frames in frame order (``offset``/``limit`` page through them)."""
    with read(env, caller, "image.read", project_id) as unit:
        _video(unit, video_id)
        rows = unit.session.exec(
            select(Image.id, Image.frame_index, Image.timestamp_s, Image.file_name, func.count(Annotation.id))
            .outerjoin(Annotation, col(Annotation.image_id) == Image.id)
            .where(Image.project_id == project_id, Image.video_id == int(video_id))
            .group_by(col(Image.id), col(Image.frame_index), col(Image.timestamp_s), col(Image.file_name))
            .order_by(col(Image.frame_index))
            .offset(max(0, int(offset)))
            .limit(max(0, int(limit)))
        )
        return [FrameInfo(int(i), int(f or 0), t, name, int(n or 0)) for i, f, t, name, n in rows]
