"""YOLO per frame for projects with videos: the plain YOLO dataset plus ``videos.json``.

:func:`store.yolo_export.export_yolo` already writes one label file per stored image, and a
video's sampled frames are images named ``<video>/frame_<index>.jpg``, so every frame gets
``labels/<video>/frame_<index>.txt`` (and ``images/<video>/frame_<index>.jpg``): ultralytics
trains on them as on any images. What YOLO has no field for is the track: ``videos.json`` says,
per video, each frame's index, time and label file, and the track id of each line of that file
(None for an annotation outside tracks), so tracks survive the export next to the YOLO lines.
The lines of a label file are the image's exported annotations in id order, the order
``export_yolo`` writes them in; this module reads them in the same order.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlmodel import Session, col, select

from store.coco_export import check_statuses
from store.models import Annotation, Image, Video
from store.yolo_export import YoloReport, export_yolo, unique_stems


@dataclass(frozen=True)
class YoloVideoReport:
    yolo: YoloReport
    videos: int
    frames: int  # label files of video frames
    tracks: int  # distinct tracks among the exported lines
    videos_json: str | None  # None when the project has no video

    def to_dict(self) -> dict[str, Any]:
        return {**self.yolo.to_dict(), **{k: v for k, v in asdict(self).items() if k != "yolo"}}


def export_yolo_video(
    session: Session,
    *,
    project_id: int,
    out_dir: Path,
    images_root: Path | None = None,
    task: str = "segment",
    status: list[str] | None = None,
) -> YoloVideoReport:
    """:func:`~store.yolo_export.export_yolo`, then ``videos.json`` when the project has videos."""
    yolo = export_yolo(
        session, project_id=project_id, out_dir=out_dir, images_root=images_root, task=task, status=status
    )
    videos = list(session.exec(select(Video).where(Video.project_id == project_id).order_by(col(Video.id))))
    if not videos:
        return YoloVideoReport(yolo, 0, 0, 0, None)
    images = session.exec(
        select(Image.id, Image.file_name).where(Image.project_id == project_id).order_by(col(Image.id))
    ).all()
    stems = unique_stems([(i, name) for i, name in images])  # the names export_yolo gave the files
    lines: dict[int, list[int | None]] = {}
    for image_id, track_id in session.exec(
        select(Annotation.image_id, Annotation.track_id)
        .where(Annotation.project_id == project_id, col(Annotation.status).in_(check_statuses(status)))
        .order_by(col(Annotation.image_id), col(Annotation.id))
    ):
        lines.setdefault(image_id, []).append(track_id)
    frames = session.exec(
        select(Image.id, Image.video_id, Image.frame_index, Image.timestamp_s)
        .where(Image.project_id == project_id, col(Image.video_id).is_not(None))
        .order_by(col(Image.video_id), col(Image.frame_index))
    ).all()
    by_video: dict[int, list[dict[str, Any]]] = {}
    for image_id, video_id, frame_index, timestamp_s in frames:
        by_video.setdefault(video_id, []).append(
            {
                "image_id": image_id,
                "frame_index": frame_index,
                "timestamp_s": timestamp_s,
                "label": f"labels/{stems[image_id]}.txt",
                "track_ids": lines.get(image_id, []),
            }
        )
    data = {
        "videos": [
            {
                "id": v.id,
                "name": v.file_name,
                "fps": v.fps,
                "sample_fps": v.sample_fps,
                "width": v.width,
                "height": v.height,
                "frames": by_video.get(v.id or 0, []),
            }  # fmt: skip
            for v in videos
        ]
    }
    path = out_dir / "videos.json"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    os.replace(tmp, path)
    tracks = {t for image_id, *_ in frames for t in lines.get(image_id, []) if t is not None}
    return YoloVideoReport(yolo, len(videos), len(frames), len(tracks), str(path))
