"""Tracks: one object through a video. Rename (set the class), merge, split at a frame, delete.

A track's annotations are the truth about it: which frames it spans and its class. Every change
here moves, relabels or deletes annotations through a change batch (:mod:`store.history`), so one
call is one undoable change: undo a merge and the annotations go back to their own track. The
``Track`` row is only the identity; it is never deleted, so an undone delete or merge finds it
again, and a track without annotations is simply empty (:func:`list_tracks` leaves it out).
``Track.category_id`` follows renames for new annotations of the track (a tracker adding frames);
after an undo the annotations' class is the one :func:`list_tracks` reports.

Writes flush, never commit: the caller opens the batch and commits once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlmodel import Session, col, select

from store.annotations import _check_category, assign_track, delete_annotations, relabel
from store.models import Annotation, ChangeBatch, Image, Track, Video


@dataclass(frozen=True)
class TrackSummary:
    id: int
    video_id: int
    category_id: int  # the class most of its annotations have
    name: str
    annotations: int
    first_frame: int
    last_frame: int


def create_track(
    session: Session, *, batch: ChangeBatch, video_id: int, category_id: int, name: str = ""
) -> Track:
    """A new, empty track in a video of the batch's project, for the annotations the batch will
    put on it; flushes. ValueError for a video or class of another project."""
    video = session.get(Video, video_id)
    if video is None or video.project_id != batch.project_id:
        raise ValueError(f"video {video_id} is not a video of project {batch.project_id}")
    _check_category(session, batch, category_id)
    track = Track(project_id=batch.project_id, video_id=video_id, category_id=category_id, name=name)
    session.add(track)
    session.flush()
    return track


def get_track(session: Session, *, project_id: int, track_id: int) -> Track | None:
    track = session.get(Track, track_id)
    return track if track is not None and track.project_id == project_id else None


def track_frames(session: Session, *, track_id: int) -> list[tuple[int, int]]:
    """``(frame_index, annotation_id)`` of a track's annotations, in frame order."""
    rows = session.exec(
        select(Image.frame_index, Annotation.id)
        .join(Image, col(Image.id) == Annotation.image_id)
        .where(Annotation.track_id == track_id)
        .order_by(col(Image.frame_index), col(Annotation.id))
    )
    return [(int(frame), int(ann)) for frame, ann in rows]  # type: ignore[arg-type]


def list_tracks(session: Session, *, project_id: int, video_id: int | None = None) -> list[TrackSummary]:
    """The project's (or one video's) tracks that hold annotations, in id order."""
    statement = (
        select(Annotation.track_id, Annotation.category_id, Image.frame_index, Image.video_id)
        .join(Image, col(Image.id) == Annotation.image_id)
        .where(Annotation.project_id == project_id, col(Annotation.track_id).is_not(None))
    )
    if video_id is not None:
        statement = statement.where(Image.video_id == video_id)
    per_track: dict[int, list[tuple[int, int, int]]] = {}
    for track_id, category_id, frame, video in session.exec(statement):
        per_track.setdefault(int(track_id), []).append((category_id, frame, video))  # type: ignore[arg-type]
    names = dict(
        session.exec(select(Track.id, Track.name).where(col(Track.id).in_(list(per_track)))).all()  # type: ignore[arg-type]
    )
    out = []
    for track_id in sorted(per_track):
        rows = per_track[track_id]
        frames = [frame for _, frame, _ in rows]
        out.append(
            TrackSummary(
                id=track_id,
                video_id=rows[0][2],
                category_id=Counter(c for c, _, _ in rows).most_common(1)[0][0],
                name=names.get(track_id, ""),
                annotations=len(rows),
                first_frame=min(frames),
                last_frame=max(frames),
            )
        )
    return out


def _require(session: Session, batch: ChangeBatch, track_id: int) -> Track:
    track = get_track(session, project_id=batch.project_id, track_id=track_id)
    if track is None:
        raise ValueError(f"track {track_id} is not a track of project {batch.project_id}")
    return track


def _annotation_ids(session: Session, track_id: int) -> list[int]:
    return [ann for _, ann in track_frames(session, track_id=track_id)]


def rename_track(session: Session, *, batch: ChangeBatch, track_id: int, category_id: int) -> int:
    """Give every annotation of the track class ``category_id``; return how many changed."""
    track = _require(session, batch, track_id)
    changed = relabel(session, batch=batch, ids=_annotation_ids(session, track_id), category_id=category_id)
    track.category_id = category_id
    session.add(track)
    session.flush()
    return changed


def merge_tracks(session: Session, *, batch: ChangeBatch, into: int, others: list[int]) -> int:
    """Move the annotations of ``others`` onto track ``into``; return how many moved.

    Raises:
        ValueError: an unknown track, tracks of different videos, or two of them on the same frame
            (a track is one object: one annotation per frame; delete the extra one first).
    """
    target = _require(session, batch, into)
    sources = [_require(session, batch, t) for t in dict.fromkeys(others) if t != into]
    if not sources:
        raise ValueError(f"merge needs at least one track other than {into}, got {others!r}")
    frames = {frame: into for frame, _ in track_frames(session, track_id=into)}
    moving: list[int] = []
    for source in sources:
        if source.video_id != target.video_id:
            raise ValueError(
                f"track {source.id} is in video {source.video_id}, track {into} in video {target.video_id}"
            )
        for frame, ann in track_frames(session, track_id=source.id):  # type: ignore[arg-type]
            if frame in frames:
                raise ValueError(
                    f"tracks {frames[frame]} and {source.id} both have frame {frame}: a track holds one "
                    "annotation per frame; delete one of them first"
                )
            frames[frame] = source.id  # type: ignore[assignment]
            moving.append(ann)
    return assign_track(session, batch=batch, ids=moving, track_id=into)


def split_track(session: Session, *, batch: ChangeBatch, track_id: int, frame_index: int) -> Track:
    """Move the track's annotations from ``frame_index`` on to a new track (same video and class).

    Raises:
        ValueError: an unknown track, or a frame that leaves one side empty.
    """
    track = _require(session, batch, track_id)
    frames = track_frames(session, track_id=track_id)
    later = [ann for frame, ann in frames if frame >= frame_index]
    if not later or len(later) == len(frames):
        span = f"frames {frames[0][0]}..{frames[-1][0]}" if frames else "no frames"
        raise ValueError(
            f"split frame must leave annotations on both sides: track {track_id} has {span}, "
            f"got frame_index={frame_index}"
        )
    new = create_track(
        session,
        batch=batch,
        video_id=track.video_id,
        category_id=track.category_id,
        name=f"{track.name or track_id} (split at {frame_index})",
    )
    assign_track(session, batch=batch, ids=later, track_id=new.id)
    return new


def delete_track(session: Session, *, batch: ChangeBatch, track_id: int) -> int:
    """Delete every annotation of the track (undo brings them back); return how many."""
    _require(session, batch, track_id)
    return delete_annotations(session, batch=batch, ids=_annotation_ids(session, track_id))
