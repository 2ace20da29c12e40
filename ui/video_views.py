"""Read-only views of videos as the Label tab shows them: the strip caption, the frame scrubber's
frames, and the legend of the tracks on the frame shown.

A video's frames are images (``Image.video_id``, ``Image.frame_index``); the scrubber walks them in
frame order, the order :func:`ops.jobs.video_frames` gives every video job, so the page and the
jobs agree on what "the next frame" is. Read through :func:`ui.views.reading`'s session.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, select

from ops.jobs import video_frames
from store.models import Annotation, Image, Video
from ui.render import Overlay, color_of


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
