"""Ingesting one video: its sampled frames become images of the project, all of them or none.

:func:`add_video` decodes the whole clip (:func:`store.videofiles.decode_video`), writing each kept
frame as a JPEG under the data home as it goes (content-addressed, like every image), and adds the
``Video`` row and one ``Image`` row per frame only once the decode has finished cleanly. When the
video is refused halfway (damaged, truncated, over a cap) the frame files it wrote are deleted and
no row exists, so the caller reports it as a skip and goes on; a failure of the run as a whole is
the caller's to roll back (it gets every written path in ``written``).
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session, select

from store.imagefiles import image_relpath, write_image_file
from store.ingest_sources import IngestLimits, unique_name
from store.models import Image, Video
from store.videofiles import VideoFrame, decode_video


@dataclass(frozen=True)
class AddedVideo:
    file_name: str
    video_id: int
    frames: int  # sampled frames stored as images
    duration_s: float
    fps: float

    def to_dict(self) -> dict[str, object]:
        return {
            "file_name": self.file_name,
            "video_id": self.video_id,
            "frames": self.frames,
            "duration_s": self.duration_s,
            "fps": self.fps,
        }


def find_video_by_sha(session: Session, *, project_id: int, sha256: str) -> Video | None:
    return session.exec(select(Video).where(Video.project_id == project_id, Video.sha256 == sha256)).first()


def frame_name(video_name: str, index: int) -> str:
    """A frame's ``Image.file_name``: ``street.mp4/frame_000040.jpg`` (index 0-based)."""
    return f"{video_name}/frame_{index:06d}.jpg"


def add_video(
    session: Session,
    *,
    home: Path,
    project_id: int,
    file_name: str,
    data: bytes,
    limits: IngestLimits,
    sample_fps: float | None,
    taken_names: set[str],
    written: list[Path],
) -> AddedVideo:
    """Decode ``data`` and add the video with its sampled frames; flushes, never commits.

    ``taken_names`` holds the image names in use (frame names are made unique against it and
    added to it); ``written`` gets every file and folder this call created and keeps.

    Raises:
        ImageRejected: the video was refused; nothing of it is left (no rows, no files).
    """
    sha = hashlib.sha256(data).hexdigest()
    mine: list[Path] = []
    frames: list[tuple[int, float, str, str]] = []  # index, timestamp, relpath, sha256

    def keep(frame: VideoFrame) -> None:
        digest = hashlib.sha256(frame.jpeg).hexdigest()
        relpath = image_relpath(project_id=project_id, sha256=digest, ext=".jpg")
        mine.extend(write_image_file(home, relpath, frame.jpeg))
        frames.append((frame.index, frame.timestamp_s, relpath, digest))

    try:
        info = decode_video(
            data,
            tag=f"labelwright video {sha[:16]}",
            max_pixels=limits.max_pixels,
            max_seconds=limits.max_video_seconds,
            max_frames=limits.max_video_frames,
            sample_fps=sample_fps,
            on_frame=keep,
        )
    except BaseException:
        _discard(mine)
        raise
    written.extend(mine)
    video = Video(
        project_id=project_id,
        file_name=_unique_video_name(session, project_id, file_name),
        sha256=sha,
        fps=info.fps,
        sample_fps=sample_fps,
        frame_count=info.frame_count,
        duration_s=info.duration_s,
        width=info.width,
        height=info.height,
    )
    session.add(video)
    session.flush()
    for index, timestamp_s, relpath, digest in frames:
        name = unique_name(frame_name(video.file_name, index), taken_names)
        taken_names.add(name)
        session.add(
            Image(
                project_id=project_id,
                file_name=name,
                path=relpath,
                sha256=digest,
                width=info.width,
                height=info.height,
                video_id=video.id,
                frame_index=index,
                timestamp_s=timestamp_s,
            )
        )
    session.flush()
    assert video.id is not None
    return AddedVideo(video.file_name, video.id, len(frames), info.duration_s, info.fps)


def _unique_video_name(session: Session, project_id: int, name: str) -> str:
    taken = set(session.exec(select(Video.file_name).where(Video.project_id == project_id)))
    return unique_name(name, taken)


def _discard(paths: list[Path]) -> None:
    """Delete what a refused video wrote: its frame files (unique to it) and emptied folders."""
    for path in reversed(paths):
        if path.is_dir():
            with contextlib.suppress(OSError):
                path.rmdir()
        else:
            path.unlink(missing_ok=True)
