"""Read-only views of videos as the Label tab shows them: the strip caption, the frame scrubber's
frames (and which of them the strip's filter keeps), the legend of the tracks on the frame shown,
and the choice of track for a new shape.

A video's frames are images (``Image.video_id``, ``Image.frame_index``); the scrubber walks them in
frame order, the order :func:`ops.jobs.video_frames` gives every video job, so the page and the
jobs agree on what "the next frame" is. Read through :func:`ui.views.reading`'s session.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from ops.annotations import NEW_TRACK
from ops.jobs import video_frames
from ops.tracks import TrackInfo
from store.images import list_images
from store.models import Annotation, Image, Video
from ui.render import Overlay, color_of

MAX_FRAMES = 20_000  # frames of one video the filter is checked on at most (as the strip reads)
SHOWN = 12  # runs of matching frames the scrubber's line names


@dataclass(frozen=True)
class Frames:
    """The open video's frames: image ids in frame order, and where the shown one is among them."""

    video_id: int
    ids: list[int]
    position: int
    line: str  # "vtest.avi · frame 3 of 16 (source frame 30, 6.00 s)"


def caption(session: Session, video_id: int) -> str:
    """The strip caption of a video: its name, sampled frames and annotations over all of them."""
    video = session.get(Video, video_id)
    frames, annotations = session.exec(
        select(func.count(), func.sum(Image.n_proposed + Image.n_accepted + Image.n_rejected)).where(
            Image.video_id == video_id
        )
    ).one()
    name = video.file_name if video is not None else f"video {video_id}"
    return f"{name} · video, {frames} frames · {int(annotations or 0)} ann."


def frames_of(session: Session, project_id: int, image_id: int | None) -> Frames | None:
    """The scrubber for the image shown: None for a photo (no scrubber) or nothing shown."""
    image = session.get(Image, image_id) if image_id else None
    if image is None or image.video_id is None or image.project_id != project_id:
        return None
    _, ids = video_frames(session, project_id, [image.video_id])
    position = ids.index(image.id or 0)
    video = session.get(Video, image.video_id)
    name = video.file_name if video is not None else f"video {image.video_id}"
    when = f", {image.timestamp_s:.2f} s" if image.timestamp_s is not None else ""
    line = f"{name} · frame {position + 1} of {len(ids)} (source frame {image.frame_index}{when})"
    return Frames(video_id=image.video_id, ids=ids, position=position, line=line)


def matching_frames(session: Session, project_id: int, video_id: int, where: dict[str, Any]) -> set[int]:
    """The video's frames the strip's filter keeps: the same query as the strip
    (:func:`store.images.list_images` with the filter ``where`` of :func:`ui.views.strip_filter`),
    narrowed to the video."""
    found: set[int] = set()
    offset = 0
    while offset < MAX_FRAMES:
        page, total = list_images(
            session, project_id=project_id, video_id=video_id, offset=offset, limit=1000, **where
        )
        found.update(i.id or 0 for i in page)
        offset += len(page)
        if not page or offset >= total:
            break
    return found


def step(ids: Sequence[int], here: int | None, delta: int, matches: set[int] | None) -> int | None:
    """The frame ``delta`` (+1 next, -1 previous) from the shown one, among the frames that match
    (``None``: every frame); None when no frame that way matches. From a frame outside ``ids``
    (none shown) the walk starts before the first frame."""
    position = ids.index(here) if here in ids else -1 if delta > 0 else len(ids)
    if matches is None:
        return ids[max(0, min(len(ids) - 1, position + delta))] if ids else None
    way = range(position + 1, len(ids)) if delta > 0 else range(position - 1, -1, -1)
    return next((ids[i] for i in way if ids[i] in matches), None)


def _runs(positions: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1–3, 7"`` (at most :data:`SHOWN` runs, then an ellipsis)."""
    runs: list[list[int]] = []
    for p in positions:
        if runs and p == runs[-1][1] + 1:
            runs[-1][1] = p
        else:
            runs.append([p, p])
    text = ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in runs[:SHOWN])
    return text + (", …" if len(runs) > SHOWN else "")


def filter_note(ids: Sequence[int], here: int | None, matches: set[int] | None) -> str:
    """What the scrubber adds to its line while the strip's filter is set: how many frames match
    and which (1-based, as the slider counts), and whether the shown one does."""
    if matches is None:
        return ""
    positions = [i + 1 for i, image_id in enumerate(ids) if image_id in matches]
    if not positions:
        return " · **filter: no frame of this video matches**"
    which = f"frame{'s' * (len(positions) > 1)} {_runs(positions)}"
    mark = "" if here in matches else " · this frame does not match"
    count = f"{len(positions)} of {len(ids)} frames match"
    return f" · **filter: {count}** ({which}; ◀/▶ step through them){mark}"


def track_choices(
    tracks: Sequence[TrackInfo], on_frame: set[int], value: str | None
) -> tuple[list[tuple[str, str]], str]:
    """The choices of the "track for new shapes" control for one video, and its value: ``value``
    kept while it names one of them, else a new track (the default). A track already on the frame
    shown says so: a track holds one annotation per frame, so adding to it there is refused."""
    choices = [("New track", NEW_TRACK)]
    for t in tracks:
        here = " · on this frame" if t.id in on_frame else ""
        choices.append((f"track {t.id} · {t.label} · {t.annotations} frames{here}", str(t.id)))
    kept = value if value in {v for _, v in choices} else NEW_TRACK
    return choices, kept


def tracks_on(session: Session, image_id: int) -> set[int]:
    """The tracks holding an annotation on this frame."""
    on = [Annotation.image_id == image_id, col(Annotation.track_id).is_not(None)]
    rows = session.exec(select(Annotation.track_id).where(*on))
    return {int(t) for t in rows if t is not None}


def legend(shown: Sequence[Overlay]) -> str:
    """Chips naming the tracks on this frame in their colours (``data-track``, ``data-color``), so
    a person, and a test, can see that a track keeps its colour and id from frame to frame."""
    chips = []
    for ov in sorted((o for o in shown if o.track_id is not None), key=lambda o: o.track_id or 0):
        r, g, b = color_of(ov)
        chips.append(
            f"<span class='lw-track' data-track='{ov.track_id}' data-annotation='{ov.id}' "
            f"data-color='{r},{g},{b}' style='background: rgb({r},{g},{b})'>"
            f"track {ov.track_id} · {html.escape(ov.label)}</span>"
        )
    return f"<div class='lw-tracks'>{''.join(chips)}</div>" if chips else ""


def same_track(session: Session, selected: int | None, image_id: int) -> int | None:
    """The annotation on ``image_id`` of the selected annotation's track (None: no such, or no track)."""
    chosen = session.get(Annotation, selected) if selected else None
    if chosen is None or chosen.track_id is None:
        return None
    return session.exec(
        select(Annotation.id).where(Annotation.image_id == image_id, Annotation.track_id == chosen.track_id)
    ).first()
