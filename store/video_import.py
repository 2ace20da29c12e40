"""What the video imports (COCO with video fields, MOTChallenge) share: all or nothing.

Both formats name a video and a frame index per box; :class:`ProjectVideos` matches the file's
video names to the project's ingested videos (exact file name, else a unique base name, else a
unique stem as the MOT exporter names sequences) and frame indexes to the stored frames
(``Image.frame_index``: 0-based in the source video). Every file track of a video becomes one
new ``Track`` (a file's track id is per video: the same id in two videos is two tracks; the
file's id -> the store's id is in the report, as ``"<video id>:<id>"`` when several videos
have tracks), and the annotations are
written with :func:`store.bulk_annotations.write_annotations` in one change batch, so undo
removes the whole import like an image import.

A video import is all or nothing: a track that lost a frame to a skipped line would be silently
fragmented, so any problem (an unknown video, a frame beyond the video or not sampled at ingest,
a degenerate box, a track id on two classes or twice on one frame) refuses the file with every
reason listed (:func:`refuse`) and nothing is written. Importing a file twice makes its tracks
twice, as an image import duplicates its boxes (undo the first).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any

from sqlmodel import Session, col, select

from store.bulk_annotations import PlannedAnnotation, write_annotations
from store.categories import ensure_categories, list_categories
from store.history import begin_change
from store.models import Image, Video
from store.mot_export import sequence_name
from store.tracks import create_track

MAX_LISTED = 20  # problems named in a refusal; the count says how many more


@dataclass
class VideoImportReport:
    project_id: int
    format: str  # coco-video | mot
    dry_run: bool
    videos: dict[str, int] = field(default_factory=dict)  # video name in the file -> project video id
    frames: int = 0  # distinct frames given boxes
    imported: int = 0
    tracked: int = 0  # of them on a track
    box_only: int = 0
    clipped: int = 0  # boxes clipped to the frame (MOT: people entering or leaving it)
    crowd_skipped: int = 0
    left_out: int = 0  # MOT lines of a class the caller chose to leave out
    categories_created: list[str] = field(default_factory=list)
    tracks: dict[str, int] = field(default_factory=dict)  # the file's track id -> the store's track id
    batch_id: int | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def refuse(source: str, problems: list[str]) -> None:
    """Raise one ValueError naming every problem (the first :data:`MAX_LISTED`) when there is any."""
    if not problems:
        return
    more = f"; ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
    raise ValueError(
        f"{source}: {len(problems)} problem(s), nothing imported: " + "; ".join(problems[:MAX_LISTED]) + more
    )


class ProjectVideos:
    """The project's videos by name, and their stored frames by source frame index."""

    def __init__(self, session: Session, project_id: int) -> None:
        self.session = session
        self.videos = list(
            session.exec(select(Video).where(Video.project_id == project_id).order_by(col(Video.id)))
        )
        self._frames: dict[int, dict[int, Image]] = {}

    def find(self, name: Any) -> Video:
        """The video ``name`` names (exactly, else by a unique base name, else by a unique stem);
        ValueError listing the project's videos when none or several match."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"a video name must be a non-empty string, got {name!r}")
        for reduce in (str, _base, sequence_name):
            hits = [v for v in self.videos if reduce(v.file_name) == reduce(name)]
            if len(hits) == 1:
                return hits[0]
        known = [v.file_name for v in self.videos] or "none"
        raise ValueError(f"unknown video {name!r}: the project's videos are {known}")

    def frame(self, video: Video, frame_index: Any) -> Image:
        """The stored frame ``frame_index`` (0-based) of ``video``; ValueError when it is not one."""
        if not isinstance(frame_index, int) or isinstance(frame_index, bool) or frame_index < 0:
            raise ValueError(f"a frame index is an int >= 0, got {frame_index!r}")
        if frame_index >= video.frame_count:
            raise ValueError(
                f"frame index {frame_index} is beyond video {video.file_name!r} "
                f"({video.frame_count} frames: indexes 0..{video.frame_count - 1})"
            )
        frames = self.frames(video)
        if frame_index not in frames:
            rate = f"{video.sample_fps:g} fps" if video.sample_fps else "every frame"
            raise ValueError(
                f"frame index {frame_index} of video {video.file_name!r} was not sampled at ingest "
                f"({len(frames)} frames stored, sampled at {rate})"
            )
        return frames[frame_index]

    def frames(self, video: Video) -> dict[int, Image]:
        if video.id not in self._frames:
            rows = self.session.exec(select(Image).where(Image.video_id == video.id))
            self._frames[video.id] = {int(i.frame_index): i for i in rows}  # type: ignore[arg-type, index]
        return self._frames[video.id]  # type: ignore[index]


def _base(name: str) -> str:
    return PurePosixPath(name).name


TrackKey = tuple[int, Any]  # (project video id, the file's track id)


def check_tracks(
    planned: list[PlannedAnnotation], keys: dict[int, TrackKey], where: dict[int, str]
) -> list[str]:
    """A track is one object of one class: refuse a track id on two classes or twice on a frame.

    ``keys`` maps ``id(planned entry)`` to its track, ``where`` to how a person finds the entry
    (an annotation id, a line number).
    """
    classes: dict[TrackKey, tuple[str, str]] = {}
    frames: dict[tuple[TrackKey, int], str] = {}
    problems = []
    for p in planned:
        key = keys.get(id(p))
        if key is None:
            continue
        first = classes.setdefault(key, (p.category, where[id(p)]))
        if first[0] != p.category:
            problems.append(
                f"{where[id(p)]}: track id {key[1]!r} is class {p.category!r} here and {first[0]!r} "
                f"at {first[1]}: a track is one object of one class"
            )
        seen = frames.setdefault((key, int(p.image.frame_index or 0)), where[id(p)])
        if seen != where[id(p)]:
            problems.append(
                f"{where[id(p)]}: track id {key[1]!r} already has frame index {p.image.frame_index} "
                f"at {seen}: a track holds one box per frame"
            )
    return problems


def write_import(
    session: Session,
    *,
    report: VideoImportReport,
    planned: list[PlannedAnnotation],
    keys: dict[int, TrackKey],
    names: dict[TrackKey, str],
    status: str,
    actor: str,
    description: str,
    start: float,
) -> VideoImportReport:
    """Fill the report; unless dry run, create one track per key and write everything as one
    change batch (committed here, rolled back on any failure)."""
    project_id = report.project_id
    existing = {c.name for c in list_categories(session, project_id=project_id)}
    report.categories_created = sorted({p.category for p in planned} - existing)
    report.imported, report.box_only = len(planned), sum(p.mask is None for p in planned)
    report.tracked = sum(id(p) in keys for p in planned)
    report.frames = len({p.image.id for p in planned})
    if report.dry_run:
        report.seconds = time.perf_counter() - start
        return report
    try:
        categories = ensure_categories(session, project_id=project_id, names=[p.category for p in planned])
        by_name = {c.name: c.id for c in categories}
        batch = begin_change(session, project_id=project_id, actor=actor, description=description[:500])
        made: dict[TrackKey, int] = {}
        for p in planned:
            key = keys.get(id(p))
            if key is None:
                continue
            if key not in made:
                track = create_track(
                    session,
                    batch=batch,
                    video_id=key[0],
                    category_id=by_name[p.category],  # type: ignore[arg-type]
                    name=names.get(key, str(key[1])),
                )
                made[key] = track.id  # type: ignore[assignment]
            p.track_id = made[key]
        write_annotations(
            session,
            batch=batch,
            planned=planned,
            category_ids=by_name,
            status=status,
            tool=f"{report.format}_import",
        )  # type: ignore[arg-type]
        session.commit()
    except BaseException:
        session.rollback()
        raise
    several = len({video for video, _ in made}) > 1
    report.tracks = {(f"{video}:{tid}" if several else str(tid)): new for (video, tid), new in made.items()}
    report.batch_id = batch.id
    report.seconds = time.perf_counter() - start
    return report
