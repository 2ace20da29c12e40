"""COCO import: validation with reasons, one undoable change, and the import -> export round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import Session, select

from store.coco_export import export_coco
from store.coco_import import import_coco
from store.db import new_session, open_engine
from store.history import undo
from store.masks import mask_from_rle, rle_from_mask
from store.models import Annotation, Category, Project
from store.polygons import mask_from_polygons, to_coco, trace_outline
from tests.store.shapes import HEIGHT, SHAPES, WIDTH, shape_photos

RLE_SHAPES = {"holes", "horse", "parts"}  # given as compressed RLE; "blob" as uncompressed RLE


def _uncompressed(mask: np.ndarray) -> dict:
    flat = mask.ravel(order="F").astype(np.int8)
    edges = np.flatnonzero(np.diff(flat)) + 1
    counts = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    return {"size": [HEIGHT, WIDTH], "counts": [0, *counts] if flat[0] else counts}


def _segmentation(name: str, mask: np.ndarray) -> list | dict:
    if name in RLE_SHAPES:
        return rle_from_mask(mask)
    if name == "blob":
        return _uncompressed(mask)
    return to_coco(trace_outline(mask).parts)  # exact pixel-corner polygons, as other tools write


def _write_coco(path: Path, image_dir: Path, extra_annotations: list[dict] | None = None) -> dict:
    photos = shape_photos(image_dir)
    images, annotations = [], []
    for i, name in enumerate(photos, start=1):
        mask = SHAPES[name]()
        ys, xs = np.nonzero(mask)
        bbox = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
        images.append({"id": i, "file_name": f"{name}.png", "width": WIDTH, "height": HEIGHT})
        annotations.append(
            {
                "id": 100 + i,
                "image_id": i,
                "category_id": 7 if name.startswith("line") else 9,
                "bbox": bbox,
                "area": int(mask.sum()),
                "segmentation": _segmentation(name, mask),
                "iscrowd": 0,
            }
        )
    coco = {
        "images": images,
        "annotations": annotations + (extra_annotations or []),
        "categories": [{"id": 7, "name": "line"}, {"id": 9, "name": " thing "}],
    }
    path.write_text(json.dumps(coco))
    return coco


@pytest.fixture
def store(tmp_path: Path) -> tuple[Session, int, Path]:
    session = new_session(open_engine(tmp_path / "home" / "store.db"))
    project = Project(name="imported")
    session.add(project)
    session.commit()
    yield session, project.id, tmp_path
    session.close()


def test_round_trip_import_then_export_keeps_every_shape(store: tuple[Session, int, Path]) -> None:
    session, project_id, tmp = store
    coco = _write_coco(tmp / "in.json", tmp / "photos")
    report = import_coco(
        session,
        home=tmp / "home",
        project_id=project_id,
        coco_path=tmp / "in.json",
        images_dir=tmp / "photos",
    )
    assert report.problems == []
    assert report.imported == len(SHAPES) and report.images_ingested == len(SHAPES)
    assert report.categories_created == ["line", "thing"]

    export = export_coco(session, project_id=project_id, out_path=tmp / "out.json")
    out = json.loads((tmp / "out.json").read_text())
    name_of = {im["id"]: im["file_name"].removesuffix(".png") for im in out["images"]}
    ious = {}
    for ann in out["annotations"]:
        name = name_of[ann["image_id"]]
        mask = SHAPES[name]()
        seg = ann["segmentation"]
        got = mask_from_rle(seg) if isinstance(seg, dict) else mask_from_polygons(seg, HEIGHT, WIDTH)
        ious[name] = float((got & mask).sum() / (got | mask).sum())
        assert ann["area"] == mask.sum()
    print("\nround-trip IoU per shape:", {k: round(v, 4) for k, v in sorted(ious.items())})
    assert set(ious) == set(SHAPES)
    assert min(ious.values()) >= 0.95
    assert np.mean(list(ious.values())) >= 0.98
    assert export.mean_fidelity == pytest.approx(np.mean(list(ious.values())))
    # Thin lines must survive as polygons with every pixel (no shrink to nothing).
    for name in (n for n in SHAPES if n.startswith("line")):
        assert ious[name] >= 0.98, name
    assert coco["categories"][1]["name"] == " thing "
    assert [c["name"] for c in out["categories"]] == ["line", "thing"]


def test_bad_entries_are_reported_and_not_imported(store: tuple[Session, int, Path]) -> None:
    session, project_id, tmp = store
    square = [[10, 10, 50, 10, 50, 50, 10, 50]]

    def entry(
        ann_id: int, bbox: object = (10, 10, 40, 40), segmentation: object = square, **kw: object
    ) -> dict:
        box = list(bbox) if isinstance(bbox, tuple) else bbox
        return {
            "id": ann_id,
            "image_id": 1,
            "category_id": 7,
            "bbox": box,
            "segmentation": segmentation,
            **kw,
        }

    bad = [
        entry(1, image_id=999),
        entry(2, bbox=(600, 400, 100, 100), segmentation=[]),
        entry(3, bbox=(10, 10, 0, 5), segmentation=[]),
        entry(4, segmentation=[[700, 500, 710, 500, 710, 510]]),
        entry(5, category_id=42),
        entry(6, segmentation=[[1, 2, 3]]),
        entry(7, segmentation={"size": [5, 5], "counts": "25"}),
        entry(8, bbox="10,10,40,40"),
        entry(101),
        entry(9, iscrowd=1),
        entry(10, bbox=(-0.5, 0, 641.0, 20), segmentation=[]),
        entry(11, image_id=[1]),
        {"id": None, "image_id": 1},
    ]
    _write_coco(tmp / "in.json", tmp / "photos", extra_annotations=bad)
    report = import_coco(
        session,
        home=tmp / "home",
        project_id=project_id,
        coco_path=tmp / "in.json",
        images_dir=tmp / "photos",
    )
    reasons = {p["annotation_id"]: p["reason"] for p in report.problems}
    assert set(reasons) == {1, 2, 3, 4, 5, 6, 7, 8, 11, 101, None}
    assert "unknown image id 999" in reasons[1]
    assert "out of bounds" in reasons[2]
    assert "degenerate" in reasons[3]
    assert "empty mask" in reasons[4]
    assert "unknown category id 42" in reasons[5]
    assert ">= 6" in reasons[6]
    assert "size" in reasons[7]
    assert "malformed bbox" in reasons[8]
    assert "duplicate annotation id 101" in reasons[101]
    assert "malformed image_id [1]" in reasons[11]
    assert "without a valid id" in reasons[None]
    assert report.crowd_skipped == 1
    assert report.imported == len(SHAPES) + 1  # the shapes and the box that overshoots by < 1 px
    (clipped,) = [a for a in session.exec(select(Annotation)) if a.mask is None]
    assert clipped.bbox == [0.0, 0.0, 640.0, 20.0]


def test_missing_image_files_and_size_mismatch(store: tuple[Session, int, Path]) -> None:
    session, project_id, tmp = store
    coco = _write_coco(tmp / "in.json", tmp / "photos")
    coco["images"][0]["file_name"] = "nowhere.png"
    coco["images"][1]["width"] = 320
    (tmp / "in.json").write_text(json.dumps(coco))
    report = import_coco(
        session,
        home=tmp / "home",
        project_id=project_id,
        coco_path=tmp / "in.json",
        images_dir=tmp / "photos",
    )
    reasons = {p.get("annotation_id", p.get("image_id")): p["reason"] for p in report.problems}
    assert "'nowhere.png' not found" in reasons[101]
    assert "the COCO file says 320x480" in reasons[102]
    assert report.imported == len(SHAPES) - 2


def test_images_already_in_the_project_are_matched_by_name(store: tuple[Session, int, Path]) -> None:
    session, project_id, tmp = store
    _write_coco(tmp / "in.json", tmp / "photos")
    first = import_coco(
        session,
        home=tmp / "home",
        project_id=project_id,
        coco_path=tmp / "in.json",
        images_dir=tmp / "photos",
    )
    again = import_coco(session, home=tmp / "home", project_id=project_id, coco_path=tmp / "in.json")
    assert first.images_ingested == len(SHAPES) and again.images_ingested == 0
    assert again.images_matched == len(SHAPES) and again.problems == []
    assert again.categories_created == []
    assert len(session.exec(select(Category).where(Category.project_id == project_id)).all()) == 2


def test_import_is_one_undoable_change_with_the_given_status(store: tuple[Session, int, Path]) -> None:
    session, project_id, tmp = store
    _write_coco(tmp / "in.json", tmp / "photos")
    report = import_coco(
        session,
        home=tmp / "home",
        project_id=project_id,
        coco_path=tmp / "in.json",
        images_dir=tmp / "photos",
        status="proposed",
        actor="alice",
    )
    rows = session.exec(select(Annotation)).all()
    assert len(rows) == len(SHAPES)
    assert {r.status for r in rows} == {"proposed"} and {r.author for r in rows} == {"alice"}
    assert all(isinstance(r.mask, dict) and isinstance(r.mask["counts"], str) for r in rows)
    undone = undo(session, project_id=project_id, actor="alice")
    assert undone is not None and undone.reverted_batch_id == report.batch_id
    assert session.exec(select(Annotation)).all() == []


def test_dry_run_writes_nothing(store: tuple[Session, int, Path]) -> None:
    session, project_id, tmp = store
    _write_coco(tmp / "in.json", tmp / "photos")
    report = import_coco(
        session,
        home=tmp / "home",
        project_id=project_id,
        coco_path=tmp / "in.json",
        images_dir=tmp / "photos",
        dry_run=True,
    )
    assert report.imported == len(SHAPES) and report.problems == []
    assert session.exec(select(Annotation)).all() == []
    assert session.exec(select(Category)).all() == []
    assert not (tmp / "home" / "images").exists()


@pytest.mark.parametrize(
    ("content", "match"),
    [("not json", "not valid JSON"), ("[]", "JSON object"), ('{"images": []}', "annotations")],
)
def test_unreadable_files_raise(store: tuple[Session, int, Path], content: str, match: str) -> None:
    session, project_id, tmp = store
    (tmp / "bad.json").write_text(content)
    with pytest.raises(ValueError, match=match):
        import_coco(session, home=tmp / "home", project_id=project_id, coco_path=tmp / "bad.json")


def test_bad_arguments_raise(store: tuple[Session, int, Path]) -> None:
    session, project_id, tmp = store
    _write_coco(tmp / "in.json", tmp / "photos")
    with pytest.raises(ValueError, match="no project"):
        import_coco(session, home=tmp, project_id=999, coco_path=tmp / "in.json")
    with pytest.raises(ValueError, match="status"):
        import_coco(session, home=tmp, project_id=project_id, coco_path=tmp / "in.json", status="done")


def test_bulk_rows_and_events_are_what_the_repository_writes(store: tuple[Session, int, Path]) -> None:
    from store.history import redo, snapshot
    from store.models import AnnotationEvent

    session, project_id, tmp = store
    inside = [[10.0, 10.0, 60.0, 10.0, 60.0, 40.0, 10.0, 40.0]]
    crossing = [[600.0, 400.0, 700.0, 400.0, 700.0, 500.0, 600.0, 500.0]]  # clipped by the image
    extra = [
        {"id": 1, "image_id": 1, "category_id": 7, "bbox": [10, 10, 50, 30], "segmentation": inside},
        {"id": 2, "image_id": 1, "category_id": 7, "bbox": [600, 400, 40, 80], "segmentation": crossing},
        {"id": 3, "image_id": 1, "category_id": 9, "bbox": [5, 5, 10, 10], "score": 0.4},
    ]
    _write_coco(tmp / "in.json", tmp / "photos", extra_annotations=extra)
    report = import_coco(
        session,
        home=tmp / "home",
        project_id=project_id,
        coco_path=tmp / "in.json",
        images_dir=tmp / "photos",
    )
    assert report.problems == [] and report.imported == len(SHAPES) + 3
    fresh = new_session(session.get_bind())  # rows as loaded from the file, not from this session
    rows = {r.id: r for r in fresh.exec(select(Annotation))}
    events = fresh.exec(select(AnnotationEvent).where(AnnotationEvent.batch_id == report.batch_id)).all()
    assert sorted(e.annotation_id for e in events) == sorted(rows) and {e.action for e in events} == {
        "create"
    }
    for event in events:
        assert event.before is None and event.after == snapshot(rows[event.annotation_id])
    own = next(r for r in rows.values() if r.segmentation == inside)  # its own polygon, kept as given
    assert own.fidelity == 1.0 and own.area == mask_from_polygons(inside, HEIGHT, WIDTH).sum()
    clipped = next(r for r in rows.values() if r.bbox[0] >= 590)  # traced from the mask, in the image
    assert clipped.segmentation != crossing and clipped.fidelity >= 0.98
    assert clipped.area == mask_from_polygons(crossing, HEIGHT, WIDTH).sum()
    assert max(max(p[0::2]) for p in clipped.segmentation) <= WIDTH
    box = next(r for r in rows.values() if r.mask is None)
    assert (box.area, box.score, box.segmentation) == (100.0, 0.4, None)
    fresh.close()

    assert undo(session, project_id=project_id, actor="import") is not None
    assert session.exec(select(Annotation)).all() == []
    assert redo(session, project_id=project_id, actor="import") is not None
    assert len(session.exec(select(Annotation)).all()) == len(SHAPES) + 3


def test_one_bad_polygon_does_not_hold_back_its_image(store: tuple[Session, int, Path]) -> None:
    session, project_id, tmp = store
    good = [[10.0, 10.0, 60.0, 10.0, 60.0, 40.0]]
    extra = [
        {"id": 1, "image_id": 1, "category_id": 7, "bbox": [10, 10, 50, 30], "segmentation": good},
        {
            "id": 2,
            "image_id": 1,
            "category_id": 7,
            "bbox": [10, 10, 50, 30],
            "segmentation": [[1, 2, "x", 4, 5, 6]],
        },
        {
            "id": 3,
            "image_id": 1,
            "category_id": 7,
            "bbox": [10, 10, 50, 30],
            "segmentation": [good[0], [1, 1]],
        },
        {
            "id": 4,
            "image_id": 1,
            "category_id": 7,
            "bbox": [10, 10, 5, 5],
            "segmentation": [[1, 1, 1.2, 1, 1.1, 1.1]],
        },
    ]
    _write_coco(tmp / "in.json", tmp / "photos", extra_annotations=extra)
    report = import_coco(
        session,
        home=tmp / "home",
        project_id=project_id,
        coco_path=tmp / "in.json",
        images_dir=tmp / "photos",
    )
    reasons = {p["annotation_id"]: p["reason"] for p in report.problems}
    assert set(reasons) == {2, 3, 4}
    assert "finite numbers" in reasons[2] and ">= 6" in reasons[3] and "empty mask" in reasons[4]
    assert report.imported == len(SHAPES) + 1


def test_bulk_rows_are_stored_as_the_orm_stores_them(store: tuple[Session, int, Path]) -> None:
    """Same text in the file as a repository write: timestamps without offset, JSON null, enum name."""
    from sqlalchemy import text

    from store.annotations import create_annotation
    from store.history import begin_change

    session, project_id, tmp = store
    _write_coco(tmp / "in.json", tmp / "photos")
    report = import_coco(
        session,
        home=tmp / "home",
        project_id=project_id,
        coco_path=tmp / "in.json",
        images_dir=tmp / "photos",
    )
    (image_id, category_id) = session.execute(
        text("SELECT image_id, category_id FROM annotation LIMIT 1")
    ).one()
    batch = begin_change(session, project_id=project_id, actor="import", description="by hand")
    create_annotation(
        session, batch=batch, image_id=image_id, category_id=category_id, bbox=[1, 1, 5, 5], status="accepted"
    )
    session.commit()
    shape = "SELECT length(created_at), substr(created_at, 11, 1), typeof(threshold), status FROM annotation"
    forms = {tuple(r) for r in session.execute(text(shape))}
    assert len(forms) == 1, forms  # the imported rows and the hand-made one look alike
    events = "SELECT DISTINCT length(created_at), before FROM annotationevent"
    assert {tuple(r) for r in session.execute(text(events))} == {(26, "null")}
    assert report.imported == len(SHAPES)


def test_bulk_rows_events_and_summaries_agree_on_both_engines(engine_url: str | Path, tmp_path: Path) -> None:
    """The bulk writer (raw executemany on SQLite, SQLAlchemy's batch on PostgreSQL) writes what the
    repository would: readable rows, one create event each, trigger-kept counts; undo removes all."""
    from store.images import class_counts
    from store.models import AnnotationEvent

    _write_coco(tmp_path / "in.json", tmp_path / "photos")
    engine = open_engine(engine_url)
    with new_session(engine) as session:
        project = Project(name="imported")
        session.add(project)
        session.commit()
        report = import_coco(
            session, home=tmp_path / "home", project_id=project.id, coco_path=tmp_path / "in.json",
            images_dir=tmp_path / "photos",
        )  # fmt: skip
        assert report.problems == [] and report.imported == len(SHAPES)
        rows = session.exec(select(Annotation).where(Annotation.project_id == project.id)).all()
        assert len(rows) == len(SHAPES)
        assert all(r.mask["size"] == [HEIGHT, WIDTH] and len(r.bbox) == 4 for r in rows)
        assert {r.status.value for r in rows} == {"accepted"}
        events = session.exec(
            select(AnnotationEvent).where(AnnotationEvent.batch_id == report.batch_id)
        ).all()
        assert sorted(e.annotation_id for e in events) == sorted(r.id for r in rows)
        assert all(e.action == "create" and e.after["id"] == e.annotation_id for e in events)
        lines = sum(name.startswith("line") for name in SHAPES)
        assert class_counts(session, project_id=project.id) == {"line": lines, "thing": len(SHAPES) - lines}
        assert undo(session, project_id=project.id, actor="import") is not None
        session.commit()
        assert session.exec(select(Annotation).where(Annotation.project_id == project.id)).all() == []
        assert sum(class_counts(session, project_id=project.id).values()) == 0
    engine.dispose()
