"""Export a project as COCO JSON, streamed, plus a fidelity report next to it.

Annotations carry their COCO segmentation precomputed (``Annotation.segmentation``, derived when
the mask was written), so export is a copy: rows come from SQLite in chunks with the JSON columns
read as raw text and written straight into the output, with no per-annotation parsing or geometry
work. Only a row with a mask but no stored segmentation is traced here.

Conventions, chosen so that pycocotools, ultralytics and supervision all read the file:

- image and annotation ids are the store's ids (stable across exports); category ids are 1..n in
  the order the classes were created;
- a box-only annotation gets its box as a 4-corner polygon (an empty list breaks pycocotools'
  ``annToRLE`` and therefore segm evaluation);
- ``iscrowd`` is 0 for every instance, including those whose segmentation is RLE (a mask with
  holes is still one object; COCOeval reads RLE for iscrowd 0 too);
- ``area`` is the mask's pixel count when there is a mask, else the box area.

The output is written to a temporary file and renamed, so a failed export leaves no partial file.
"""

from __future__ import annotations

import os
import time
from array import array
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import orjson
from sqlalchemy import Text, case, cast, func, null, or_
from sqlmodel import Session, col, select

from store.geometry import mask_geometry, segmentation_fidelity
from store.masks import area_from_rle
from store.models import Annotation, AnnotationStatus, Category, Image, Project

CHUNK = 20_000
DEFAULT_STATUSES = [AnnotationStatus.accepted.value, AnnotationStatus.proposed.value]


@dataclass(frozen=True)
class ExportReport:
    out_path: str
    fidelity_path: str
    images: int
    annotations: int
    categories: int
    polygon_instances: int
    rle_instances: int
    box_only: int
    derived_now: int  # masks that had no stored segmentation and were traced during export
    mean_fidelity: float | None
    worst_fidelity: float | None
    worst_annotation_id: int | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fidelity_path_for(out_path: Path) -> Path:
    """``streets.json`` -> ``streets.fidelity.json``."""
    return out_path.with_name(f"{out_path.stem}.fidelity.json")


def box_polygon(bbox: list[float]) -> list[list[float]]:
    x, y, w, h = bbox
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]


def check_statuses(status: list[str] | None) -> list[str]:
    if status is None:
        return DEFAULT_STATUSES
    allowed = {s.value for s in AnnotationStatus}
    unknown = sorted(set(status) - allowed)
    if unknown or not status:
        raise ValueError(f"status must be a non-empty subset of {sorted(allowed)}, got {status!r}")
    return list(status)


def json_text(expr: Any) -> Any:
    """Text of a JSON column, with SQL NULL and JSON ``null`` both read as SQL NULL."""
    return func.nullif(cast(expr, Text), "null")


class _Fidelity:
    """Per-instance IoU of what was exported, kept compact (two arrays) for a million rows."""

    def __init__(self) -> None:
        self.ids = array("q")
        self.ious = array("d")
        self.rle_flags = array("b")

    def add(self, annotation_id: int, iou: float, is_rle: bool) -> None:
        self.ids.append(annotation_id)
        self.ious.append(iou)
        self.rle_flags.append(is_rle)

    def summary(self) -> dict[str, Any]:
        n = len(self.ious)
        if not n:
            return {"instances": 0, "mean": None, "worst": None, "worst_annotation_id": None}
        worst = min(range(n), key=self.ious.__getitem__)
        rle = sum(self.rle_flags)
        return {
            "instances": n,
            "polygon_instances": n - rle,
            "rle_instances": rle,
            "mean": sum(self.ious) / n,
            "worst": self.ious[worst],
            "worst_annotation_id": self.ids[worst],
        }

    def write(self, path: Path, box_only: int) -> dict[str, Any]:
        """Write the summary, then one line per instance (streamed: a million rows stay small)."""
        summary = self.summary()
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("w", encoding="utf-8", buffering=1 << 20) as fh:
            fh.write(
                '{"summary":' + orjson.dumps({**summary, "box_only": box_only}).decode() + ',\n"instances":['
            )
            sep = "\n"
            for ann_id, iou, rle in zip(self.ids, self.ious, self.rle_flags, strict=True):
                kind = "rle" if rle else "polygon"
                fh.write(f'{sep}{{"annotation_id":{ann_id},"iou":{round(iou, 6)!r},"segmentation":"{kind}"}}')
                sep = ",\n"
            fh.write("\n]}\n")
        os.replace(tmp, path)
        return summary


def _write_annotations(
    session: Session,
    fh: IO[str],
    *,
    project_id: int,
    statuses: list[str],
    cat_ids: dict[int, int],
    include_masks: bool,
    fidelity: _Fidelity,
) -> tuple[int, int, int]:
    """Stream the annotation rows; returns (count, box_only, derived_now)."""
    seg = json_text(Annotation.segmentation)
    mask = json_text(Annotation.mask)
    # The mask text is fetched only for the rare rows that need work: no segmentation, fidelity or area.
    incomplete = or_(seg.is_(None), col(Annotation.fidelity).is_(None), Annotation.area <= 0)
    stmt = (
        select(
            Annotation.id,
            Annotation.image_id,
            Annotation.category_id,
            cast(Annotation.bbox, Text),
            seg,
            Annotation.area,
            Annotation.score,
            Annotation.fidelity,
            mask.is_not(None),
            case((incomplete, mask), else_=null()),
        )
        .where(Annotation.project_id == project_id, col(Annotation.status).in_(statuses))
        .order_by(col(Annotation.id))
        .execution_options(yield_per=CHUNK)
    )
    count = box_only = derived = 0
    sep = ""
    for (
        ann_id,
        image_id,
        category_id,
        bbox_text,
        seg_text,
        area,
        score,
        fid,
        has_mask,
        mask_json,
    ) in session.execute(stmt):
        if not (include_masks and has_mask):
            bbox = orjson.loads(bbox_text)
            seg_text = orjson.dumps(box_polygon(bbox)).decode()
            area = bbox[2] * bbox[3]
            box_only += 1
        else:
            if seg_text is None:
                geom = mask_geometry(orjson.loads(mask_json))
                seg_text, area, fid = orjson.dumps(geom.segmentation).decode(), geom.area, geom.fidelity
                derived += 1
            if fid is None:
                fid = segmentation_fidelity(orjson.loads(seg_text), orjson.loads(mask_json))
            if area <= 0:
                area = area_from_rle(orjson.loads(mask_json))
            fidelity.add(ann_id, fid, seg_text.lstrip().startswith("{"))
        score_part = "" if score is None else f',"score":{float(score)!r}'
        fh.write(
            f'{sep}{{"id":{ann_id},"image_id":{image_id},"category_id":{cat_ids[category_id]},'
            f'"bbox":{bbox_text},"area":{float(area)!r},"segmentation":{seg_text},"iscrowd":0{score_part}}}'
        )
        sep = ",\n"
        count += 1
    return count, box_only, derived


def export_coco(
    session: Session,
    *,
    project_id: int,
    out_path: Path,
    status: list[str] | None = None,
    include_masks: bool = True,
) -> ExportReport:
    """Write the project's annotations as COCO JSON to ``out_path`` and a fidelity report next to it.

    Args:
        status: which annotation statuses to export; default accepted and proposed (rejected
            annotations are known to be wrong).
        include_masks: False exports boxes only (every segmentation is the box polygon).

    Raises:
        ValueError: no such project, or an unknown status.
    """
    start = time.perf_counter()
    statuses = check_statuses(status)
    project = session.get(Project, project_id)
    if project is None:
        raise ValueError(f"no project with id {project_id}")
    categories = list(
        session.exec(select(Category).where(Category.project_id == project_id).order_by(col(Category.id)))
    )
    cat_ids = {c.id: i for i, c in enumerate(categories, start=1)}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    fidelity = _Fidelity()
    n_images = 0
    try:
        with tmp.open("w", encoding="utf-8", buffering=1 << 20) as fh:
            info = {
                "description": project.name,
                "version": "1.0",
                "contributor": "labelwright",
                "date_created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            fh.write('{"info":' + orjson.dumps(info).decode() + ',"licenses":[],\n"categories":')
            cats = [
                {"id": cat_ids[c.id], "name": c.name, "supercategory": c.supercategory} for c in categories
            ]
            fh.write(orjson.dumps(cats).decode() + ',\n"images":[\n')
            images = select(Image.id, Image.file_name, Image.width, Image.height).where(
                Image.project_id == project_id
            )
            sep = ""
            for image_id, file_name, width, height in session.execute(
                images.order_by(col(Image.id)).execution_options(yield_per=CHUNK)
            ):
                row = {"id": image_id, "file_name": file_name, "width": width, "height": height}
                fh.write(sep + orjson.dumps(row).decode())
                sep = ",\n"
                n_images += 1
            fh.write('\n],\n"annotations":[\n')
            n_anns, box_only, derived = _write_annotations(
                session,
                fh,
                project_id=project_id,
                statuses=statuses,
                cat_ids=cat_ids,
                include_masks=include_masks,
                fidelity=fidelity,
            )
            fh.write("\n]}\n")
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    fidelity_path = fidelity_path_for(out_path)
    summary = fidelity.write(fidelity_path, box_only)
    return ExportReport(
        out_path=str(out_path),
        fidelity_path=str(fidelity_path),
        images=n_images,
        annotations=n_anns,
        categories=len(categories),
        polygon_instances=summary.get("polygon_instances", 0),
        rle_instances=summary.get("rle_instances", 0),
        box_only=box_only,
        derived_now=derived,
        mean_fidelity=summary["mean"],
        worst_fidelity=summary["worst"],
        worst_annotation_id=summary["worst_annotation_id"],
        seconds=time.perf_counter() - start,
    )
