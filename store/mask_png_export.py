"""Export per-image PNG masks: an instance id map and a class id map per image, plus a legend.

``instances/<stem>.png`` is 16-bit: 0 is background, 1..k the image's instances in annotation id
order. ``classes/<stem>.png`` holds the COCO export's category id (1..n in creation order, 0 is
background); 8-bit up to 255 classes, else 16-bit. Where instances overlap, larger ones are painted
first so a small object on top of a large one stays visible; ``legend.json`` gives, per image and
instance, the annotation id, class, mask area and visible area (less than the area when covered).
Box-only annotations have no mask and are left out (counted in the legend). Every image gets its
maps, an empty one included.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import orjson
from sqlmodel import Session, col, select

from store.coco_export import CHUNK, check_statuses, json_text
from store.masks import mask_from_rle
from store.models import Annotation, Category, Image, Project
from store.yolo_export import unique_stems

KINDS = ("both", "instance", "class")


@dataclass(frozen=True)
class MaskPngReport:
    out_dir: str
    legend: str
    images: int
    instances: int
    box_only_skipped: int
    overlapping_pixels: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _write_png(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(".png", pixels)
    if not ok:
        raise ValueError(f"could not encode {path.name} as PNG")
    path.write_bytes(data.tobytes())


def export_masks(
    session: Session,
    *,
    project_id: int,
    out_dir: Path,
    kind: str = "both",
    status: list[str] | None = None,
) -> MaskPngReport:
    """Write instance and/or class id maps for every image of the project, and ``legend.json``.

    Args:
        kind: ``both``, ``instance`` or ``class``: which maps to write.
        status: which annotation statuses to export; default accepted and proposed.

    Raises:
        ValueError: no such project, an unknown kind or status, more than 65535 instances on an image.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    statuses = check_statuses(status)
    if session.get(Project, project_id) is None:
        raise ValueError(f"no project with id {project_id}")
    categories = session.exec(
        select(Category.id, Category.name).where(Category.project_id == project_id).order_by(col(Category.id))
    ).all()
    class_value = {cat_id: i for i, (cat_id, _name) in enumerate(categories, start=1)}
    class_dtype = np.uint8 if len(categories) <= 255 else np.uint16
    images = session.exec(
        select(Image.id, Image.file_name, Image.width, Image.height)
        .where(Image.project_id == project_id)
        .order_by(col(Image.id))
    ).all()
    stems = unique_stems([(row[0], row[1]) for row in images])
    mask = json_text(Annotation.mask)
    stmt = (
        select(Annotation.image_id, Annotation.id, Annotation.category_id, mask)
        .where(Annotation.project_id == project_id, col(Annotation.status).in_(statuses))
        .order_by(col(Annotation.image_id), col(Annotation.id))
        .execution_options(yield_per=CHUNK)
    )
    groups = itertools.groupby(session.execute(stmt), key=lambda r: r[0])
    pending = next(groups, None)
    legend_images = []
    n_instances = box_only = overlapping = 0
    for image_id, file_name, width, height in images:
        rows = []
        if pending is not None and pending[0] == image_id:
            rows = list(pending[1])
            pending = next(groups, None)
        box_only += sum(r[3] is None for r in rows)
        masked = [(ann_id, cat_id, mask_from_rle(orjson.loads(m))) for _i, ann_id, cat_id, m in rows if m]
        if len(masked) > 65535:
            raise ValueError(f"{file_name!r} has {len(masked)} instances; a 16-bit map holds at most 65535")
        instance_map = np.zeros((height, width), np.uint16)
        class_map = np.zeros((height, width), class_dtype)
        coverage = np.zeros((height, width), np.uint16)
        painting = sorted(enumerate(masked, start=1), key=lambda item: -int(item[1][2].sum()))
        for value, (_ann_id, cat_id, pixels) in painting:
            instance_map[pixels] = value
            class_map[pixels] = class_value[cat_id]
            coverage += pixels
        overlapping += int(np.count_nonzero(coverage > 1))
        counts = np.bincount(instance_map.ravel(), minlength=len(masked) + 1)
        entries = [
            {
                "value": value,
                "annotation_id": ann_id,
                "class_value": class_value[cat_id],
                "area": int(pixels.sum()),
                "visible_area": int(counts[value]),
            }
            for value, (ann_id, cat_id, pixels) in enumerate(masked, start=1)
        ]
        stem = stems[image_id]
        record: dict[str, Any] = {"image_id": image_id, "file_name": file_name, "instances": entries}
        if kind in ("both", "instance"):
            record["instance_png"] = f"instances/{stem}.png"
            _write_png(out_dir / record["instance_png"], instance_map)
        if kind in ("both", "class"):
            record["class_png"] = f"classes/{stem}.png"
            _write_png(out_dir / record["class_png"], class_map)
        legend_images.append(record)
        n_instances += len(masked)
    legend = {
        "background": 0,
        "classes": [{"value": class_value[cat_id], "name": name} for cat_id, name in categories],
        "box_only_skipped": box_only,
        "images": legend_images,
    }
    legend_path = out_dir / "legend.json"
    out_dir.mkdir(parents=True, exist_ok=True)
    legend_path.write_bytes(orjson.dumps(legend, option=orjson.OPT_INDENT_2))
    return MaskPngReport(
        out_dir=str(out_dir),
        legend=str(legend_path),
        images=len(images),
        instances=n_instances,
        box_only_skipped=box_only,
        overlapping_pixels=overlapping,
    )
