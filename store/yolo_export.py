"""Export a project as an ultralytics YOLO dataset: ``labels/<stem>.txt`` per image plus ``data.yaml``.

Segment task: one line per instance, ``class x1 y1 x2 y2 ...`` normalised to [0, 1]. YOLO-seg holds
one polygon per instance, so an instance with several parts gets *all* of them, joined through
zero-width bridges exactly as ultralytics' own COCO converter joins them
(:func:`store.polygons.join_rings`); a mask with holes has its hole outlines joined the same way, and
the even-odd fill ultralytics rasterises with (``cv2.fillPoly``) leaves them empty. Stored polygon
segmentations are reused; RLE ones are traced from the mask. A box-only annotation becomes its box
as a 4-corner polygon (a 4-number line would be misread in a segment dataset).

Detect task: ``class cx cy w h`` normalised. Class indexes are 0..n-1 in category creation order
(the COCO export's ids minus one). With ``images_root`` (the data home) the images are copied (hard
linked where possible) to ``images/``; ultralytics finds a label by swapping ``images`` for
``labels`` in the image path, so both trees share names, made unique by stem.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import orjson
from sqlalchemy import Text, cast
from sqlmodel import Session, col, select

from store.coco_export import CHUNK, box_polygon, check_statuses, json_text
from store.geometry import single_polygon
from store.models import Annotation, Category, Image, Project
from store.polygons import join_rings

TASKS = ("segment", "detect")


@dataclass(frozen=True)
class YoloReport:
    out_dir: str
    data_yaml: str
    images: int
    label_files: int
    instances: int
    box_only: int
    traced_from_mask: int  # RLE segmentations (holes, low polygon fidelity) traced here
    copied_images: int
    missing_images: list[str]  # file names whose image file was not found under images_root

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def unique_stems(rows: list[tuple[int, str]]) -> dict[int, PurePosixPath]:
    """image id -> relative path without suffix, unique even for ``a.jpg`` next to ``a.png``."""
    taken: set[str] = set()
    out = {}
    for image_id, file_name in rows:
        stem = PurePosixPath(file_name).with_suffix("")
        if str(stem) in taken:
            stem = stem.with_name(f"{stem.name}-{image_id}")
        taken.add(str(stem))
        out[image_id] = stem
    return out


def _polygon_line(
    seg_text: str | None, mask_text: str | None, bbox: list[float], tolerance: float
) -> tuple[list[float], str]:
    """The instance as one flat polygon in pixels, and where it came from: stored | mask | box."""
    seg = orjson.loads(seg_text) if seg_text is not None else None
    if isinstance(seg, list) and seg:
        parts = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in seg]
        return (parts[0] if len(parts) == 1 else join_rings(parts)).ravel().tolist(), "stored"
    if mask_text is not None:
        return single_polygon(orjson.loads(mask_text), tolerance=tolerance)[0], "mask"
    return box_polygon(bbox)[0], "box"


def _normalised(values: list[float], width: int, height: int) -> str:
    xy = np.asarray(values, dtype=np.float64).reshape(-1, 2) / (width, height)
    return " ".join(f"{v:.6f}" for v in np.clip(xy, 0.0, 1.0).ravel())


def _write_data_yaml(path: Path, names: list[str], copied: bool) -> None:
    lines = [
        "# YOLO dataset exported by labelwright." + ("" if copied else " Put the images under images/."),
        f"path: {json.dumps(str(path.parent.resolve()))}",
        "train: images",
        "val: images",
        "names:",
        *(f"  {i}: {json.dumps(name)}" for i, name in enumerate(names)),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _copy_image(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def export_yolo(
    session: Session,
    *,
    project_id: int,
    out_dir: Path,
    images_root: Path | None = None,
    task: str = "segment",
    status: list[str] | None = None,
    tolerance: float = 1.0,
) -> YoloReport:
    """Write the project's annotations as a YOLO dataset under ``out_dir``.

    Args:
        images_root: the data home the images' stored paths are relative to; when given, images
            are copied to ``out_dir/images``.
        task: ``segment`` (polygons) or ``detect`` (boxes).
        status: which annotation statuses to export; default accepted and proposed.
        tolerance: simplification in px for instances traced from their mask.

    Raises:
        ValueError: no such project, an unknown task or status.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    statuses = check_statuses(status)
    project = session.get(Project, project_id)
    if project is None:
        raise ValueError(f"no project with id {project_id}")
    categories = session.exec(
        select(Category.id, Category.name).where(Category.project_id == project_id).order_by(col(Category.id))
    ).all()
    class_index = {cat_id: i for i, (cat_id, _name) in enumerate(categories)}
    images = session.exec(
        select(Image.id, Image.file_name, Image.width, Image.height, Image.path)
        .where(Image.project_id == project_id)
        .order_by(col(Image.id))
    ).all()
    stems = unique_stems([(row[0], row[1]) for row in images])
    seg = json_text(Annotation.segmentation)
    stmt = (
        select(
            Annotation.image_id,
            Annotation.category_id,
            cast(Annotation.bbox, Text),
            seg,
            json_text(Annotation.mask),
        )
        .where(Annotation.project_id == project_id, col(Annotation.status).in_(statuses))
        .order_by(col(Annotation.image_id), col(Annotation.id))
        .execution_options(yield_per=CHUNK)
    )
    rows = itertools.groupby(session.execute(stmt), key=lambda r: r[0])
    pending = next(rows, None)
    instances = box_only = traced = copied = 0
    missing: list[str] = []
    (out_dir / "labels").mkdir(parents=True, exist_ok=True)
    for image_id, file_name, width, height, path in images:
        lines = []
        if pending is not None and pending[0] == image_id:
            for _img, cat_id, bbox_text, seg_text, mask_text in pending[1]:
                bbox = orjson.loads(bbox_text)
                if task == "detect":
                    x, y, w, h = bbox
                    coords = _normalised([x + w / 2, y + h / 2, w, h], width, height)
                    box_only += mask_text is None
                else:
                    polygon, source = _polygon_line(seg_text, mask_text, bbox, tolerance)
                    box_only += source == "box"
                    traced += source == "mask"
                    coords = _normalised(polygon, width, height)
                lines.append(f"{class_index[cat_id]} {coords}")
            instances += len(lines)
            pending = next(rows, None)
        stem = stems[image_id]
        label = out_dir / "labels" / stem.with_suffix(".txt")
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        if images_root is not None:
            source = Path(images_root) / path
            if source.is_file():
                _copy_image(source, out_dir / "images" / stem.with_suffix(PurePosixPath(file_name).suffix))
                copied += 1
            else:
                missing.append(file_name)
    data_yaml = out_dir / "data.yaml"
    _write_data_yaml(data_yaml, [name for _id, name in categories], copied=images_root is not None)
    return YoloReport(
        out_dir=str(out_dir),
        data_yaml=str(data_yaml),
        images=len(images),
        label_files=len(images),
        instances=instances,
        box_only=box_only,
        traced_from_mask=traced,
        copied_images=copied,
        missing_images=missing,
    )
