"""Import COCO with video fields (what :mod:`store.coco_video_export` writes, TAO-style COCO).

The file is a COCO file plus ``videos`` (``{"id", "name"}``, name as the project knows the video:
``vtest.avi``, or its stem), images with ``video_id`` and ``frame_id`` (or TAO's
``frame_index``: the 0-based frame index in the source video) and annotations with ``track_id``
(or YouTube-VIS-style ``instance_id``). An optional ``tracks`` list (``{"id", "video_id",
"name"}``) gives track names. Frames are matched by video and frame index, never by file name, so
a file from another tool (frames named ``00012.jpg``) imports the same; images without
``video_id`` are matched as the image import matches them, and must be in the project already.

Boxes, masks, polygons and classes are checked exactly as the image import checks them
(:func:`store.coco_import.plan_annotations`); unlike it, any problem refuses the whole file
(:mod:`store.video_import`), so a track is imported whole or not at all. A segmentation that is
exactly the 4-corner polygon of its bbox (what :mod:`store.coco_export` writes for a box-only
annotation, as pycocotools needs a segmentation) imports as a box, so a tracker's boxes stay
boxes through export and import.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlmodel import Session

from store.coco_export import box_polygon
from store.coco_import import (
    ImportReport,
    _Images,
    _is_id,
    _number,
    check_status,
    plan_annotations,
    read_coco,
)
from store.models import Project, Video
from store.video_import import (
    ProjectVideos,
    TrackKey,
    VideoImportReport,
    check_tracks,
    refuse,
    write_import,
)


def read_video_coco(path: Path) -> dict[str, Any]:
    """A COCO file with a ``videos`` list; ValueError naming what is missing."""
    coco = read_coco(path)
    if not isinstance(coco.get("videos"), list):
        raise ValueError(
            f"a COCO video file needs a list under 'videos', got {type(coco.get('videos')).__name__}: "
            "import a plain COCO file with format coco"
        )
    return coco


def import_coco_video(
    session: Session,
    *,
    project_id: int,
    coco_path: Path,
    status: str = "accepted",
    actor: str = "import",
    dry_run: bool = False,
) -> VideoImportReport:
    """Import ``coco_path`` into the project's videos as one change, or refuse it whole.

    Raises:
        ValueError: no such project, a bad status, an unreadable file, or any problem in it
            (every one named).
    """
    start = time.perf_counter()
    if session.get(Project, project_id) is None:
        raise ValueError(f"no project with id {project_id}")
    check_status(status)
    coco = read_video_coco(coco_path)
    report = VideoImportReport(project_id=project_id, format="coco-video", dry_run=dry_run)
    problems: list[str] = []
    project_videos = ProjectVideos(session, project_id)
    videos: dict[Any, Video] = {}  # the file's video id -> project video
    for entry in coco["videos"]:
        try:
            if not isinstance(entry, dict) or not _is_id(entry.get("id")):
                raise ValueError(f"a video entry needs an id (an int or a string), got {entry!r:.80}")
            videos[entry["id"]] = video = project_videos.find(entry.get("name"))
            report.videos[entry["name"]] = video.id  # type: ignore[assignment]
        except ValueError as exc:
            problems.append(f"video {entry.get('id') if isinstance(entry, dict) else entry!r}: {exc}")
    images = _Images(session, project_id, None)
    video_of: dict[Any, Any] = {}  # coco image id -> the file's video id
    for entry in coco["images"]:
        if isinstance(entry, dict) and entry.get("video_id") is not None and _is_id(entry.get("id")):
            _add_frame(entry, videos, project_videos, images)
            video_of[entry["id"]] = entry["video_id"]
        else:
            images.add(entry)
    planned_report = ImportReport(project_id=project_id, dry_run=dry_run)
    coco = {**coco, "annotations": [_box_as_box(a) for a in coco["annotations"]]}
    planned, _ = plan_annotations(coco, images, planned_report)
    report.crowd_skipped = planned_report.crowd_skipped
    for p in planned_report.problems:
        what = f"annotation {p['annotation_id']}" if "annotation_id" in p else f"image {p.get('image_id')}"
        problems.append(f"{what}: {p['reason']}")
    keys, where = _track_keys(coco, planned, video_of, videos, problems)
    problems += check_tracks(planned, keys, where)
    refuse(Path(coco_path).name, problems)
    return write_import(
        session,
        report=report,
        planned=planned,
        keys=keys,
        names=_track_names(coco, videos),
        status=status,
        actor=actor,
        description=f"import {Path(coco_path).name}",
        start=start,
    )


def _box_as_box(ann: Any) -> Any:
    """The entry without its segmentation when that is only its box written as a polygon."""
    if not isinstance(ann, dict):
        return ann
    segmentation, bbox = ann.get("segmentation"), ann.get("bbox")
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(map(_number, bbox))):
        return ann
    if isinstance(segmentation, list) and len(segmentation) == 1 and isinstance(segmentation[0], list):
        points, corners = segmentation[0], box_polygon(bbox)[0]
        if len(points) == len(corners) and all(
            _number(p) and abs(p - c) < 1e-6 for p, c in zip(points, corners, strict=True)
        ):
            return {**ann, "segmentation": None}
    return ann


def _add_frame(
    entry: dict[str, Any], videos: dict[Any, Video], project: ProjectVideos, images: _Images
) -> None:
    """Resolve a video frame entry to a stored frame (or record why not, for its annotations)."""
    image_id = entry["id"]
    video = videos.get(entry["video_id"])
    frame_index = entry.get("frame_id", entry.get("frame_index"))
    try:
        if video is None:
            raise ValueError(f"video_id {entry['video_id']!r} is not in the file's videos")
        frame = project.frame(video, frame_index)
    except ValueError as exc:
        images.missing[image_id] = f"image {image_id}: {exc}"
        return
    images.matched[image_id] = frame
    w, h = entry.get("width", frame.width), entry.get("height", frame.height)
    images.declared[image_id] = (w, h)


def _track_keys(
    coco: dict[str, Any],
    planned: list[Any],
    video_of: dict[Any, Any],
    videos: dict[Any, Video],
    problems: list[str],
) -> tuple[dict[int, TrackKey], dict[int, str]]:
    """Each planned entry's track ``(project video id, file track id)``; malformed ids are problems."""
    by_coco_id = {p.coco_id: p for p in planned}
    keys: dict[int, TrackKey] = {}
    where: dict[int, str] = {}
    for ann in coco["annotations"]:
        if not isinstance(ann, dict) or ann.get("id") not in by_coco_id:
            continue
        p = by_coco_id[ann["id"]]
        where[id(p)] = f"annotation {ann['id']}"
        track = ann.get("track_id", ann.get("instance_id"))
        if track is None:
            continue
        if not _is_id(track):
            problems.append(
                f"annotation {ann['id']}: malformed track_id {track!r}: expected an int or a string"
            )
        elif ann["image_id"] not in video_of:
            problems.append(
                f"annotation {ann['id']}: track_id {track!r} on image {ann['image_id']}, not a video frame"
            )
        else:
            keys[id(p)] = (videos[video_of[ann["image_id"]]].id, track)  # type: ignore[assignment]
    return keys, where


def _track_names(coco: dict[str, Any], videos: dict[Any, Video]) -> dict[TrackKey, str]:
    """Names from the optional ``tracks`` list, for each video it may belong to."""
    names: dict[TrackKey, str] = {}
    for t in coco.get("tracks") or []:
        if isinstance(t, dict) and _is_id(t.get("id")) and isinstance(t.get("name"), str) and t["name"]:
            for file_video, video in videos.items():
                if t.get("video_id") in (None, file_video):
                    names[(video.id, t["id"])] = t["name"]  # type: ignore[index]
    return names
