"""COCO with video fields (TAO / YouTube-VIS-style COCO): still a plain COCO file for pycocotools.

The file is the project's ordinary COCO export (:func:`store.coco_export.export_coco`: same ids,
categories, segmentations and fidelity report) with, added:

- ``videos``: ``{"id", "name", "width", "height", "fps", "frame_count", "duration_s"}`` per video;
- ``tracks``: ``{"id", "video_id", "category_id", "name"}`` per track holding exported annotations
  (``category_id`` in the file's numbering: the class most of its annotations have);
- per image of a video: ``video_id``, ``frame_id`` (the frame's 0-based index in the source video,
  as TAO's ``frame_index``; both keys are written) and ``timestamp_s``;
- per annotation on a track: ``track_id`` and ``instance_id`` (both the store's track id, the
  names TAO and YouTube-VIS-style loaders read) and ``video_id``.

Plain images and annotations keep exactly their plain COCO form, so a project mixing photos and
videos exports one file. The added keys are ignored by COCO readers that do not know them.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlmodel import Session, col, select

from store.coco_export import ExportReport, export_coco
from store.models import Annotation, Image, Track, Video


@dataclass(frozen=True)
class VideoExportReport:
    coco: ExportReport
    videos: int
    tracks: int
    tracked_annotations: int
    # Per video: instances, mean and worst IoU of the exported segmentation against the mask, the
    # worst annotation; also written into the fidelity file's summary as ``videos``.
    fidelity_by_video: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**self.coco.to_dict(), **{k: v for k, v in asdict(self).items() if k != "coco"}}


def export_coco_video(
    session: Session,
    *,
    project_id: int,
    out_path: Path,
    status: list[str] | None = None,
    include_masks: bool = True,
) -> VideoExportReport:
    """Write the project as COCO with video and track fields to ``out_path`` (atomically).

    Raises:
        ValueError: no such project, or an unknown status (from :func:`export_coco`).
    """
    start = time.perf_counter()
    coco = export_coco(
        session, project_id=project_id, out_path=out_path, status=status, include_masks=include_masks
    )
    data = orjson.loads(out_path.read_bytes())
    frames = {
        image_id: (video_id, frame_index, timestamp_s)
        for image_id, video_id, frame_index, timestamp_s in session.exec(
            select(Image.id, Image.video_id, Image.frame_index, Image.timestamp_s).where(
                Image.project_id == project_id, col(Image.video_id).is_not(None)
            )
        )
    }
    for image in data["images"]:
        if image["id"] in frames:
            video_id, frame_index, timestamp_s = frames[image["id"]]
            image.update(
                video_id=video_id, frame_id=frame_index, frame_index=frame_index, timestamp_s=timestamp_s
            )
    track_of = dict(
        session.exec(
            select(Annotation.id, Annotation.track_id).where(
                Annotation.project_id == project_id, col(Annotation.track_id).is_not(None)
            )
        ).all()
    )
    classes: dict[int, Counter[int]] = {}
    for ann in data["annotations"]:
        track_id = track_of.get(ann["id"])
        if track_id is None:
            continue
        ann.update(track_id=track_id, instance_id=track_id, video_id=frames[ann["image_id"]][0])
        classes.setdefault(track_id, Counter())[ann["category_id"]] += 1
    data["videos"] = [
        {
            "id": v.id,
            "name": v.file_name,
            "width": v.width,
            "height": v.height,
            "fps": v.fps,
            "frame_count": v.frame_count,
            "duration_s": v.duration_s,
        }
        for v in session.exec(select(Video).where(Video.project_id == project_id).order_by(col(Video.id)))
    ]
    names = dict(session.exec(select(Track.id, Track.name).where(col(Track.id).in_(list(classes)))).all())
    data["tracks"] = [
        {
            "id": track_id,
            "video_id": _video_of(session, track_id),
            "category_id": counts.most_common(1)[0][0],
            "name": names.get(track_id, ""),
        }
        for track_id, counts in sorted(classes.items())
    ]
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    try:
        tmp.write_bytes(orjson.dumps(data))
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    by_video = video_fidelity(session, project_id=project_id, fidelity_path=Path(coco.fidelity_path))
    coco = ExportReport(**{**coco.to_dict(), "seconds": time.perf_counter() - start})
    return VideoExportReport(
        coco=coco,
        videos=len(data["videos"]),
        tracks=len(data["tracks"]),
        tracked_annotations=sum(classes_n.total() for classes_n in classes.values()),
        fidelity_by_video=by_video,
    )


def video_fidelity(session: Session, *, project_id: int, fidelity_path: Path) -> list[dict[str, Any]]:
    """The fidelity report per video (what the COCO segmentation loses against the masks, on the
    frames of each video), added to the report file's summary as ``videos``; returned too."""
    report = orjson.loads(fidelity_path.read_bytes())
    video_of = dict(
        session.exec(
            select(Annotation.id, Image.video_id)
            .join(Image, col(Image.id) == Annotation.image_id)
            .where(Annotation.project_id == project_id, col(Image.video_id).is_not(None))
        ).all()
    )
    names = dict(session.exec(select(Video.id, Video.file_name).where(Video.project_id == project_id)).all())
    groups: dict[int, list[tuple[float, int, str]]] = {}
    for row in report["instances"]:
        video_id = video_of.get(row["annotation_id"])
        if video_id is not None:
            groups.setdefault(video_id, []).append((row["iou"], row["annotation_id"], row["segmentation"]))
    out = []
    for video_id in sorted(names):
        rows = groups.get(video_id, [])
        worst = min(rows, default=None)
        out.append(
            {
                "video_id": video_id,
                "name": names[video_id],
                "instances": len(rows),
                "rle_instances": sum(kind == "rle" for _, _, kind in rows),
                "mean": sum(iou for iou, _, _ in rows) / len(rows) if rows else None,
                "worst": worst[0] if worst else None,
                "worst_annotation_id": worst[1] if worst else None,
            }
        )
    report["summary"]["videos"] = out
    tmp = fidelity_path.with_name(f".{fidelity_path.name}.tmp")
    tmp.write_bytes(orjson.dumps(report))
    os.replace(tmp, fidelity_path)
    return out


def _video_of(session: Session, track_id: int) -> int:
    track = session.get(Track, track_id)
    assert track is not None  # annotations name tracks that exist (tracks are never deleted)
    return track.video_id
