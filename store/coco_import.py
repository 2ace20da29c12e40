"""Import a COCO file into a project: validate everything first, then write one undoable change.

Images are matched to the project by ``file_name`` (exactly, else by a unique base name); images
the project lacks are taken from ``images_dir`` through :func:`store.ingest.ingest` (same checks,
dedupe and storage as any ingest). Categories are matched by *name* and created when missing.
Every imported instance stores its mask as RLE (polygons are rasterised at the image size the way
pycocotools does), so the store keeps one mask representation, with bbox and area taken from that
mask. An entry with no segmentation is a box.

At scale (100,000 polygons) the work is done per image and in bulk: the polygons of one image are
rasterised in one pycocotools call, their areas and boxes read in one more, and the rows and their
``create`` events are inserted with one executemany each (the rows the annotation repository would
write, see :mod:`store.bulk_annotations`), instead of an ORM object, a flush and a trace per annotation.
An entry's own polygons are its stored segmentation when they lie inside the image: the mask is
their rasterisation, so their fidelity is 1 by construction and tracing the mask again
(:func:`store.geometry.mask_geometry`, still used for RLE entries and polygons that cross the
border) could only lose vertices.

Bad entries are reported with their COCO annotation id and the reason, and are not imported:
unknown image or category id, image file not found, size mismatch, degenerate or out-of-bounds
box, malformed segmentation, empty mask. Crowd regions (``iscrowd`` 1) are skipped and counted.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import orjson
from pycocotools import mask as mask_utils
from sqlmodel import Session, select

from store.bulk_annotations import PlannedAnnotation, write_annotations
from store.categories import ensure_categories, list_categories
from store.history import begin_change
from store.ingest import ingest
from store.ingest_sources import clean_name
from store.masks import area_from_rle, bbox_from_rle, normalize_rle
from store.models import Image, Project
from store.polygons import check_polygons, rle_from_polygons

BOX_SLACK = 1.0  # px a box may overshoot the image (float rounding in other tools); it is clipped


@dataclass
class ImportReport:
    project_id: int
    dry_run: bool
    images_matched: int = 0  # COCO images found in the project already
    images_ingested: int = 0
    categories_created: list[str] = field(default_factory=list)
    imported: int = 0
    box_only: int = 0
    crowd_skipped: int = 0
    batch_id: int | None = None
    problems: list[dict[str, Any]] = field(default_factory=list)  # {annotation_id | image_id, reason}
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_coco(path: Path) -> dict[str, Any]:
    """Load a COCO file and check its top level; ValueError names what is missing."""
    try:
        coco = orjson.loads(Path(path).read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{Path(path).name} is not valid JSON: {exc}") from None
    if not isinstance(coco, dict):
        raise ValueError(f"a COCO file is a JSON object, got {type(coco).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            raise ValueError(f"a COCO file needs a list under {key!r}, got {type(coco.get(key)).__name__}")
    return coco


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_id(value: Any) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


def check_bbox(bbox: Any, width: int, height: int, *, slack: float = BOX_SLACK) -> list[float]:
    """A COCO box clipped to the image; ValueError when malformed, degenerate or out of bounds.

    ``slack``: px a box may overshoot the image and be clipped (``math.inf``: any box with area
    inside the image is clipped to it, as MOTChallenge boxes of people entering the frame need).
    """
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(map(_number, bbox))):
        raise ValueError(f"malformed bbox {bbox!r}: expected [x, y, w, h] of 4 finite numbers")
    x, y, w, h = (float(v) for v in bbox)
    if w <= 0 or h <= 0:
        raise ValueError(f"degenerate bbox {bbox!r}: width and height must be > 0")
    if x < -slack or y < -slack or x + w > width + slack or y + h > height + slack:
        raise ValueError(f"bbox {bbox!r} is out of bounds of the {width}x{height} image")
    x0, y0 = max(x, 0.0), max(y, 0.0)
    x1, y1 = min(x + w, float(width)), min(y + h, float(height))
    if x1 - x0 <= 0 or y1 - y0 <= 0:
        raise ValueError(f"bbox {bbox!r} has no area inside the {width}x{height} image")
    return [x0, y0, x1 - x0, y1 - y0]


def mask_of(segmentation: Any, width: int, height: int) -> dict[str, Any] | None:
    """The entry's segmentation as an RLE with str counts, or None for a box-only entry."""
    if segmentation is None or segmentation == []:
        return None
    if isinstance(segmentation, dict):
        rle = normalize_rle(segmentation)
        if rle["size"] != [height, width]:
            raise ValueError(f"RLE size {rle['size']} does not match the image, [h, w] = {[height, width]}")
    else:
        rle = normalize_rle(rle_from_polygons(segmentation, height, width))
    if area_from_rle(rle) == 0:
        raise ValueError(EMPTY)
    return rle


EMPTY = "empty mask: the segmentation covers no pixel of the image"


def _inside(polygons: list[list[float]], width: int, height: int) -> bool:
    """All vertices within the image (builtins on the flat lists: faster than numpy at this size)."""
    return all(
        min(p[0::2]) >= 0 and min(p[1::2]) >= 0 and max(p[0::2]) <= width and max(p[1::2]) <= height
        for p in polygons
    )


def rasterise_image(
    entries: list[tuple[Any, Any]], width: int, height: int
) -> tuple[list[tuple[dict[str, Any], float, list[float], Any]], list[tuple[Any, str]]]:
    """Masks of the polygon entries ``(key, segmentation)`` of one image, in three pycocotools calls.

    Returns ``(rle, area, bbox, key)`` per good entry, in the given order, and ``(key, reason)``
    per refused entry (malformed polygons, empty mask), each checked as :func:`mask_of` checks one.
    """
    polys: list[list[float]] = []
    owners: list[int] = []  # index into ``good`` of each polygon
    good: list[Any] = []
    problems: list[tuple[Any, str]] = []
    for key, segmentation in entries:
        try:
            checked = check_polygons(segmentation)
        except ValueError as exc:
            problems.append((key, str(exc)))
            continue
        owners.extend([len(good)] * len(checked))
        polys.extend(checked)  # numbers checked: pycocotools reads them as doubles itself
        good.append(key)
    if not good:
        return [], problems
    parts = mask_utils.frPyObjects(polys, height, width)
    grouped: list[list[dict[str, Any]]] = [[] for _ in good]
    for owner, rle in zip(owners, parts, strict=True):
        grouped[owner].append(rle)
    rles = [mask_utils.merge(g) for g in grouped]
    areas = mask_utils.area(rles)
    boxes = mask_utils.toBbox(rles)
    out = []
    for key, rle, area, box in zip(good, rles, areas.tolist(), boxes.tolist(), strict=True):
        if area == 0:
            problems.append((key, EMPTY))
            continue
        mask = {"size": [height, width], "counts": rle["counts"].decode("ascii")}
        out.append((mask, float(area), box, key))
    return out, problems


class _Images:
    """COCO image entries resolved to project images, or to files in ``images_dir`` to ingest."""

    def __init__(self, session: Session, project_id: int, images_dir: Path | None) -> None:
        rows = list(session.exec(select(Image).where(Image.project_id == project_id)))
        self.by_name = {r.file_name: r for r in rows}
        by_base: dict[str, list[Image]] = {}
        for r in rows:
            by_base.setdefault(PurePosixPath(r.file_name).name, []).append(r)
        self.by_base = {k: v[0] for k, v in by_base.items() if len(v) == 1}
        self.images_dir = images_dir
        self.matched: dict[Any, Image] = {}  # coco image id -> project image
        self.to_ingest: dict[Any, str] = {}  # coco image id -> file name relative to images_dir
        self.declared: dict[Any, tuple[int, int]] = {}  # coco image id -> (width, height)
        self.missing: dict[Any, str] = {}  # coco image id -> reason

    def add(self, entry: Any) -> None:
        if not isinstance(entry, dict) or not _is_id(entry.get("id")):
            return  # its annotations are reported as having an unknown image id
        image_id, name = entry["id"], entry.get("file_name")
        w, h = entry.get("width"), entry.get("height")
        if not (
            isinstance(name, str) and name and isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0
        ):
            self.missing[image_id] = f"image entry {image_id} needs file_name, width and height"
            return
        self.declared[image_id] = (w, h)
        found = self.by_name.get(name) or self.by_base.get(PurePosixPath(name).name)
        if found is not None:
            self.matched[image_id] = found
            return
        clean, unsafe = clean_name(name)
        if self.images_dir is not None and unsafe is None and (self.images_dir / clean).is_file():
            self.to_ingest[image_id] = clean
        else:
            where = f"the project or {self.images_dir}" if self.images_dir else "the project (no images dir)"
            self.missing[image_id] = f"image file {name!r} not found in {where}"

    def ingest(self, session: Session, *, home: Path, project: Project) -> int:
        """Ingest the images the project lacks, from a staging copy holding only those files."""
        if not self.to_ingest or self.images_dir is None:
            return 0
        with tempfile.TemporaryDirectory(prefix="lw-coco-") as staging:
            for name in set(self.to_ingest.values()):
                target = Path(staging) / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.images_dir / name, target)
            report = ingest(session, home=home, project_name=project.name, source=Path(staging))
        taken = dict(report.added)
        dupes = dict(report.duplicates)
        skipped = dict(report.skipped)
        for coco_id, name in self.to_ingest.items():
            image_id = taken.get(name)
            if image_id is None and name in dupes:
                image_id = session.exec(
                    select(Image.id).where(Image.file_name == dupes[name], Image.project_id == project.id)
                ).first()
            if image_id is None:
                self.missing[coco_id] = (
                    f"image {name!r} was not ingested: {skipped.get(name, 'unknown reason')}"
                )
            else:
                self.matched[coco_id] = session.get(Image, image_id)
        return len(report.added)


def plan_annotations(
    coco: dict[str, Any], images: _Images, report: ImportReport
) -> tuple[list[PlannedAnnotation], dict[Any, str]]:
    """Validate every annotation; good ones become the plan, bad ones land in ``report.problems``."""
    names = {  # whitespace collapsed, as the category repository stores names
        c["id"]: " ".join(str(c["name"]).split())
        for c in coco["categories"]
        if isinstance(c, dict) and _is_id(c.get("id")) and str(c.get("name", "")).strip()
    }
    planned: list[PlannedAnnotation] = []
    polygons: dict[int, list[tuple[PlannedAnnotation, Any]]] = {}  # per image: rasterised together
    seen: set[Any] = set()
    for ann in coco["annotations"]:
        coco_id = ann.get("id") if isinstance(ann, dict) else None
        try:
            if not _is_id(coco_id):
                raise ValueError(f"annotation without a valid id (an int or a string), got {coco_id!r}")
            for key in ("image_id", "category_id"):
                if not _is_id(ann.get(key)):
                    raise ValueError(f"malformed {key} {ann.get(key)!r}: expected an int or a string")
            if coco_id in seen:
                raise ValueError(f"duplicate annotation id {coco_id}")
            seen.add(coco_id)
            if ann.get("iscrowd"):
                report.crowd_skipped += 1
                continue
            image = images.matched.get(ann.get("image_id"))
            if image is None:
                raise ValueError(
                    images.missing.get(ann.get("image_id"), f"unknown image id {ann.get('image_id')!r}")
                )
            declared = images.declared[ann["image_id"]]
            if declared != (image.width, image.height):
                raise ValueError(
                    f"image {image.file_name!r} is {image.width}x{image.height} in the project, "
                    f"the COCO file says {declared[0]}x{declared[1]}"
                )
            if ann.get("category_id") not in names:
                raise ValueError(f"unknown category id {ann.get('category_id')!r}")
            bbox = check_bbox(ann.get("bbox"), image.width, image.height)
            score = ann.get("score")
            score = float(score) if _number(score) and 0 <= score <= 1 else None
            segmentation = ann.get("segmentation")
            entry = PlannedAnnotation(coco_id, image, names[ann["category_id"]], bbox, None, score)
            if isinstance(segmentation, list) and segmentation:
                polygons.setdefault(id(image), []).append((entry, segmentation))
                continue
            entry.mask = mask_of(segmentation, image.width, image.height)
            if entry.mask is None:
                entry.area = bbox[2] * bbox[3]
            else:
                entry.bbox, entry.area = bbox_from_rle(entry.mask), float(area_from_rle(entry.mask))
            planned.append(entry)
        except ValueError as exc:
            report.problems.append({"annotation_id": coco_id, "reason": str(exc)})
    for group in polygons.values():
        image = group[0][0].image
        given = {id(e): seg for e, seg in group}
        done, refused = rasterise_image(group, image.width, image.height)
        for mask, area, box, entry in done:
            entry.mask, entry.area, entry.bbox = mask, area, box
            polys = given[id(entry)]
            if _inside(polys, image.width, image.height):
                entry.segmentation, entry.fidelity = polys, 1.0
            planned.append(entry)
        report.problems.extend({"annotation_id": e.coco_id, "reason": reason} for e, reason in refused)
    return planned, names


def check_status(status: str) -> None:
    """The status imported annotations get: ValueError unless proposed, accepted or rejected."""
    if status not in ("proposed", "accepted", "rejected"):
        raise ValueError(f"status must be proposed, accepted or rejected, got {status!r}")


def import_coco(
    session: Session,
    *,
    home: Path,
    project_id: int,
    coco_path: Path,
    images_dir: Path | None = None,
    status: str = "accepted",
    actor: str = "import",
    dry_run: bool = False,
) -> ImportReport:
    """Import ``coco_path`` into the project as one change (undo reverts the annotations).

    Args:
        home: the data home, where ingested images are stored.
        images_dir: where the COCO file's images are, for those the project lacks.
        status: the status of imported annotations; accepted by default (imported data is ground truth).
        dry_run: validate and report, write nothing (images not yet in the project are checked
            against the sizes the COCO file declares).

    Raises:
        ValueError: no such project, an unreadable COCO file, or a bad status.
    """
    start = time.perf_counter()
    project = session.get(Project, project_id)
    if project is None:
        raise ValueError(f"no project with id {project_id}")
    check_status(status)
    coco = read_coco(coco_path)
    report = ImportReport(project_id=project_id, dry_run=dry_run)
    images = _Images(session, project_id, images_dir)
    for entry in coco["images"]:
        images.add(entry)
    report.images_matched = len(images.matched)
    if dry_run:
        for coco_id, name in images.to_ingest.items():  # judged by the declared size until ingested
            w, h = images.declared[coco_id]
            images.matched[coco_id] = Image(
                project_id=project_id, file_name=name, path="", sha256="", width=w, height=h
            )
    else:
        report.images_ingested = images.ingest(session, home=home, project=project)
    for coco_id, reason in images.missing.items():
        report.problems.append({"image_id": coco_id, "reason": reason})
    planned, names = plan_annotations(coco, images, report)
    existing = {c.name for c in list_categories(session, project_id=project_id)}
    report.categories_created = sorted(set(names.values()) - existing)
    report.box_only = sum(p.mask is None for p in planned)
    if dry_run:
        report.imported = len(planned)
        report.seconds = time.perf_counter() - start
        return report
    categories = ensure_categories(session, project_id=project_id, names=list(names.values()))
    by_name = {c.name: c.id for c in categories}
    batch = begin_change(
        session, project_id=project_id, actor=actor, description=f"import {Path(coco_path).name}"
    )
    try:
        write_annotations(
            session, batch=batch, planned=planned, category_ids=by_name, status=status, tool="coco_import"
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    report.batch_id, report.imported = batch.id, len(planned)
    report.seconds = time.perf_counter() - start
    return report
