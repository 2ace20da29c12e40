"""MOTChallenge text export: one ``<sequence>.txt`` per video, the tracker-output layout.

Each line is ``frame,id,x,y,w,h,conf,-1,-1,-1`` (MOTChallenge 2D: 1-based frame number, track id,
top-left box and size in pixels, confidence, and world coordinates unused), sorted by frame then
id. ``frame`` is the source frame index + 1, so a clip sampled at a lower rate keeps its real frame
numbers (with gaps). ``id`` is the store's track id; ``conf`` the annotation's score (1 when it has
none: a person drew it). Only annotations on a track are written. Next to each sequence,
``<sequence>.ini`` holds its ``seqinfo`` (frame rate, length, size) as MOTChallenge ships it.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from store.coco_export import check_statuses
from store.ingest_sources import unique_name
from store.models import Annotation, Image, Project, Video


@dataclass(frozen=True)
class MotExportReport:
    out_dir: str
    sequences: dict[str, int]  # file name -> video id
    lines: int
    tracks: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sequence_name(video_name: str) -> str:
    """``clips/street walk.mp4`` -> ``street_walk``: a safe file stem."""
    stem = Path(video_name).stem
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "video"


def export_mot(
    session: Session, *, project_id: int, out_dir: Path, status: list[str] | None = None
) -> MotExportReport:
    """Write one MOTChallenge file per video of the project into ``out_dir``.

    Raises:
        ValueError: no such project, an unknown status, or a project without videos.
    """
    start = time.perf_counter()
    statuses = check_statuses(status)
    if session.get(Project, project_id) is None:
        raise ValueError(f"no project with id {project_id}")
    videos = list(session.exec(select(Video).where(Video.project_id == project_id).order_by(col(Video.id))))
    if not videos:
        raise ValueError(f"project {project_id} has no videos: MOT export needs at least one, got 0")
    out_dir.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    sequences: dict[str, int] = {}
    lines = 0
    tracks: set[int] = set()
    for video in videos:
        name = unique_name(sequence_name(video.file_name), taken)
        taken.add(name)
        rows = session.exec(
            select(Image.frame_index, Annotation.track_id, Annotation.bbox, Annotation.score)
            .join(Image, col(Image.id) == Annotation.image_id)
            .where(
                Image.video_id == video.id,
                col(Annotation.track_id).is_not(None),
                col(Annotation.status).in_(statuses),
            )
            .order_by(col(Image.frame_index), col(Annotation.track_id))
        )
        text = []
        for frame_index, track_id, (x, y, w, h), score in rows:
            conf = 1.0 if score is None else float(score)
            text.append(f"{frame_index + 1},{track_id},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{conf:.4f},-1,-1,-1\n")
            tracks.add(track_id)  # type: ignore[arg-type]
        _write(out_dir / f"{name}.txt", "".join(text))
        _write(out_dir / f"{name}.ini", _seqinfo(name, video))
        sequences[f"{name}.txt"] = video.id  # type: ignore[assignment]
        lines += len(text)
    return MotExportReport(str(out_dir), sequences, lines, len(tracks), time.perf_counter() - start)


def _seqinfo(name: str, video: Video) -> str:
    return (
        f"[Sequence]\nname={name}\nimDir=img1\nframeRate={video.fps:g}\nseqLength={video.frame_count}\n"
        f"imWidth={video.width}\nimHeight={video.height}\nimExt=.jpg\n"
    )


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
