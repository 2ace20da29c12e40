from __future__ import annotations

import math

import numpy as np
import pytest
from sqlmodel import Session, col, select

from store.annotation_queries import query_annotations
from store.annotations import (
    create_annotation,
    delete_annotation,
    delete_annotations,
    get_annotation,
    relabel,
    set_status,
    update_annotation,
    validate_bbox,
)
from store.categories import ensure_categories
from store.errors import StaleWriteError
from store.history import begin_change
from store.masks import rle_from_mask
from store.models import AnnotationEvent, Category, ChangeBatch, Image, Project
from store.projects import create_project


@pytest.fixture
def cats(session: Session, project: Project) -> list[Category]:
    return ensure_categories(session, project_id=project.id, names=["car", "person"])


@pytest.fixture
def batch(session: Session, project: Project) -> ChangeBatch:
    return begin_change(session, project_id=project.id, actor="alice", description="edit")


def _events(session: Session, annotation_id: int) -> list[AnnotationEvent]:
    statement = select(AnnotationEvent).where(AnnotationEvent.annotation_id == annotation_id)
    return list(session.exec(statement.order_by(col(AnnotationEvent.id))))


def test_create_with_bbox_records_provenance_and_an_event(
    session: Session, image: Image, cats: list[Category], batch: ChangeBatch
) -> None:
    ann = create_annotation(
        session,
        batch=batch,
        image_id=image.id,
        category_id=cats[0].id,
        bbox=[10, 20, 30, 40],
        score=0.9,
        tool="detect",
        model="centernet",
        prompt="car",
        threshold=0.3,
        job_id=7,
        agent_run_id=3,
    )
    session.commit()
    assert ann.bbox == [10.0, 20.0, 30.0, 40.0] and ann.area == 1200.0 and ann.version == 1
    assert (ann.tool, ann.model, ann.prompt, ann.threshold, ann.job_id, ann.author) == (
        "detect",
        "centernet",
        "car",
        0.3,
        7,
        "alice",
    )
    (event,) = _events(session, ann.id)
    assert event.action == "create" and event.before is None and event.batch_id == batch.id
    assert event.after["bbox"] == [10.0, 20.0, 30.0, 40.0] and event.after["status"] == "proposed"
    assert event.actor == "alice"


@pytest.mark.parametrize(
    ("bbox", "message"),
    [
        ([1, 2, 3], "4 numbers\\), got 3 values"),
        ([1, 2, "x", 4], "must hold 4 numbers"),
        ([1, 2, math.nan, 4], "finite"),
        ([1, 2, math.inf, 4], "finite"),
        ([1, 2, 0, 4], "w=0.0"),
        ([1, 2, 3, -4], "h=-4.0"),
        ([-5, 2, 3, 4], "inside the 640x480 image"),
        ([630, 2, 30, 4], "x\\+w=660.0"),
        ([1, 470, 3, 20], "y\\+h=490.0"),
    ],
)
def test_bad_bboxes_are_refused(
    session: Session, image: Image, cats: list[Category], batch: ChangeBatch, bbox: list, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        create_annotation(session, batch=batch, image_id=image.id, category_id=cats[0].id, bbox=bbox)
    assert query_annotations(session, project_id=image.project_id) == []


def test_validate_bbox_accepts_the_full_image() -> None:
    assert validate_bbox((0, 0, 640, 480), width=640, height=480) == [0.0, 0.0, 640.0, 480.0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"status": "maybe"}, "status must be one of"),
        ({"score": 1.5}, "score must be in \\[0, 1\\], got 1.5"),
        ({"category_id": 999}, "category 999 is not a category of project"),
        ({"bbox": None}, "needs a bbox or a mask, got neither"),
    ],
)
def test_bad_fields_are_refused(
    session: Session, image: Image, cats: list[Category], batch: ChangeBatch, kwargs: dict, message: str
) -> None:
    args = {"image_id": image.id, "category_id": cats[0].id, "bbox": [0, 0, 5, 5]} | kwargs
    with pytest.raises(ValueError, match=message):
        create_annotation(session, batch=batch, **args)


def test_image_of_another_project_is_refused(session: Session, image: Image, cats: list[Category]) -> None:
    other = create_project(session, name="other")
    (cat,) = ensure_categories(session, project_id=other.id, names=["car"])
    batch = begin_change(session, project_id=other.id, actor="bob", description="x")
    with pytest.raises(ValueError, match=f"image {image.id} is not an image of project {other.id}"):
        create_annotation(session, batch=batch, image_id=image.id, category_id=cat.id, bbox=[0, 0, 5, 5])


def _disk_rle(height: int = 480, width: int = 640) -> dict:
    yy, xx = np.mgrid[:height, :width]
    mask = ((yy - 200) ** 2 + (xx - 300) ** 2 <= 50**2).astype(np.uint8)
    return rle_from_mask(mask)


def test_mask_fills_geometry(
    session: Session, image: Image, cats: list[Category], batch: ChangeBatch
) -> None:
    rle = _disk_rle()
    ann = create_annotation(session, batch=batch, image_id=image.id, category_id=cats[0].id, mask=rle)
    assert ann.bbox == [250.0, 150.0, 101.0, 101.0]
    assert abs(ann.area - math.pi * 50**2) < 0.02 * math.pi * 50**2
    assert isinstance(ann.segmentation, list) and len(ann.segmentation[0]) >= 8
    assert ann.fidelity is not None and ann.fidelity >= 0.98
    assert isinstance(ann.mask["counts"], str)


def test_mask_of_the_wrong_size_is_refused(
    session: Session, image: Image, cats: list[Category], batch: ChangeBatch
) -> None:
    with pytest.raises(
        ValueError, match="mask size must be \\[height, width\\] = \\[480, 640\\], got \\[100, 100\\]"
    ):
        create_annotation(
            session, batch=batch, image_id=image.id, category_id=cats[0].id, mask=_disk_rle(100, 100)
        )


def test_update_bumps_version_and_logs_before_after(
    session: Session, image: Image, cats: list[Category], batch: ChangeBatch
) -> None:
    ann = create_annotation(
        session, batch=batch, image_id=image.id, category_id=cats[0].id, bbox=[0, 0, 5, 5]
    )
    updated = update_annotation(
        session, batch=batch, annotation_id=ann.id, expected_version=1, bbox=[1, 1, 10, 10], status="accepted"
    )
    assert updated is not None and updated.version == 2 and updated.area == 100.0
    event = _events(session, ann.id)[-1]
    assert event.action == "update"
    assert event.before["bbox"] == [0.0, 0.0, 5.0, 5.0] and event.before["version"] == 1
    assert event.after["bbox"] == [1.0, 1.0, 10.0, 10.0] and event.after["status"] == "accepted"


def test_stale_update_says_who_and_writes_nothing(
    session: Session, image: Image, cats: list[Category], batch: ChangeBatch
) -> None:
    ann = create_annotation(
        session, batch=batch, image_id=image.id, category_id=cats[0].id, bbox=[0, 0, 5, 5]
    )
    session.commit()
    bob = begin_change(session, project_id=image.project_id, actor="bob", description="accept")
    update_annotation(session, batch=bob, annotation_id=ann.id, expected_version=1, status="accepted")
    session.commit()
    with pytest.raises(
        StaleWriteError, match="expected version 1, it is now version 2 \\(last changed by 'bob'\\)"
    ):
        update_annotation(session, batch=batch, annotation_id=ann.id, expected_version=1, status="rejected")
    assert get_annotation(session, annotation_id=ann.id).status == "accepted"
    with pytest.raises(StaleWriteError):
        delete_annotation(session, batch=batch, annotation_id=ann.id, expected_version=1)


def test_update_refuses_unknown_fields_and_boxes_under_masks(
    session: Session, image: Image, cats: list[Category], batch: ChangeBatch
) -> None:
    ann = create_annotation(session, batch=batch, image_id=image.id, category_id=cats[0].id, mask=_disk_rle())
    with pytest.raises(ValueError, match="cannot update \\['id', 'version'\\]"):
        update_annotation(session, batch=batch, annotation_id=ann.id, id=5, version=9)
    with pytest.raises(ValueError, match="has a mask"):
        update_annotation(session, batch=batch, annotation_id=ann.id, bbox=[0, 0, 5, 5])
    dropped = update_annotation(session, batch=batch, annotation_id=ann.id, mask=None, bbox=[0, 0, 5, 5])
    assert dropped.mask is None and dropped.segmentation is None and dropped.area == 25.0
    assert update_annotation(session, batch=batch, annotation_id=12345, status="accepted") is None


def test_delete(session: Session, image: Image, cats: list[Category], batch: ChangeBatch) -> None:
    ann = create_annotation(
        session, batch=batch, image_id=image.id, category_id=cats[0].id, bbox=[0, 0, 5, 5]
    )
    assert delete_annotation(session, batch=batch, annotation_id=ann.id) is True
    assert get_annotation(session, annotation_id=ann.id) is None
    assert delete_annotation(session, batch=batch, annotation_id=ann.id) is False
    assert _events(session, ann.id)[-1].action == "delete"
    assert _events(session, ann.id)[-1].before["id"] == ann.id


def test_bulk_helpers(session: Session, image: Image, cats: list[Category], batch: ChangeBatch) -> None:
    ids = [
        create_annotation(
            session, batch=batch, image_id=image.id, category_id=cats[0].id, bbox=[i, i, 5, 5]
        ).id
        for i in range(5)
    ]
    assert set_status(session, batch=batch, ids=ids[:3], status="accepted") == 3
    assert set_status(session, batch=batch, ids=ids[:3], status="accepted") == 0  # no-op writes no events
    assert relabel(session, batch=batch, ids=ids[3:], category_id=cats[1].id) == 2
    assert delete_annotations(session, batch=batch, ids=[ids[0], ids[1]]) == 2
    session.commit()
    pid = image.project_id
    assert [a.id for a in query_annotations(session, project_id=pid, status="accepted")] == [ids[2]]
    assert [a.id for a in query_annotations(session, project_id=pid, category_id=cats[1].id)] == ids[3:]
    assert len(_events(session, ids[2])) == 2


def test_bulk_helpers_refuse_unknown_ids_and_change_nothing(
    session: Session, image: Image, cats: list[Category], batch: ChangeBatch
) -> None:
    ann = create_annotation(
        session, batch=batch, image_id=image.id, category_id=cats[0].id, bbox=[0, 0, 5, 5]
    )
    session.commit()
    for call in (
        lambda: delete_annotations(session, batch=batch, ids=[ann.id, 998, 999]),
        lambda: set_status(session, batch=batch, ids=[ann.id, 998, 999], status="accepted"),
        lambda: relabel(session, batch=batch, ids=[ann.id, 998, 999], category_id=cats[1].id),
    ):
        with pytest.raises(ValueError, match="2 annotation ids are not in project .*: 998, 999"):
            call()
    current = get_annotation(session, annotation_id=ann.id)
    assert current.status == "proposed" and current.category_id == cats[0].id


def test_query_filters(session: Session, image: Image, cats: list[Category], batch: ChangeBatch) -> None:
    for i, (cat, score, tool) in enumerate([(0, 0.9, "detect"), (0, 0.2, "detect"), (1, 0.5, "manual")]):
        create_annotation(
            session,
            batch=batch,
            image_id=image.id,
            category_id=cats[cat].id,
            bbox=[i, 0, 5, 5],
            score=score,
            tool=tool,
        )
    session.commit()
    pid = image.project_id
    scores = lambda **kw: [a.score for a in query_annotations(session, project_id=pid, **kw)]  # noqa: E731
    assert scores() == [0.9, 0.2, 0.5]
    assert scores(min_score=0.5) == [0.9, 0.5]
    assert scores(max_score=0.5) == [0.2, 0.5]
    assert scores(tool="manual") == [0.5]
    assert scores(category_id=cats[0].id, limit=1) == [0.9]
    assert scores(image_id=image.id, status="rejected") == []
