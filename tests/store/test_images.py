from __future__ import annotations

import pytest
from sqlmodel import Session

from store.annotations import create_annotation
from store.categories import ensure_categories
from store.history import begin_change
from store.images import (
    add_image,
    class_counts,
    class_status_counts,
    get_image,
    get_image_by_name,
    get_image_by_sha256,
    image_count,
    list_images,
)
from store.models import Image, Project
from tests.store.conftest import sha


def _add(session: Session, project: Project, name: str) -> Image:
    return add_image(
        session,
        project_id=project.id,
        file_name=name,
        path=f"images/{name}",
        sha256=sha(name),
        width=100,
        height=80,
    )


def test_add_and_find(session: Session, project: Project) -> None:
    image = _add(session, project, "a.jpg")
    assert get_image(session, image_id=image.id) == image
    assert get_image_by_name(session, project_id=project.id, file_name="a.jpg") == image
    assert get_image_by_sha256(session, project_id=project.id, sha256=sha("a.jpg")) == image
    assert get_image(session, image_id=999) is None
    assert get_image_by_name(session, project_id=project.id, file_name="b.jpg") is None
    assert image_count(session, project_id=project.id) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 0}, "image size must be positive, got 0x80"),
        ({"sha256": "abc"}, "sha256 must be 64 hex characters, got 3"),
        ({"file_name": "other.jpg"}, "same content as image"),
        ({"sha256": sha("new")}, "already has an image named 'a.jpg'"),
    ],
)
def test_bad_or_duplicate_images_are_refused(
    session: Session, project: Project, kwargs: dict, message: str
) -> None:
    _add(session, project, "a.jpg")
    args = {"file_name": "a.jpg", "path": "images/a.jpg", "sha256": sha("a.jpg"), "width": 100, "height": 80}
    with pytest.raises(ValueError, match=message):
        add_image(session, project_id=project.id, **(args | kwargs))
    assert image_count(session, project_id=project.id) == 1


@pytest.fixture
def labelled(session: Session, project: Project) -> dict[str, int]:
    """Six images: 0 and 1 with cars, 2 with a person, 3-5 without annotations."""
    images = [_add(session, project, f"{i}.jpg") for i in range(6)]
    car, person, _bus = ensure_categories(session, project_id=project.id, names=["car", "person", "bus"])
    batch = begin_change(session, project_id=project.id, actor="alice", description="seed")
    for image_idx, cat, score, status in [
        (0, car, 0.9, "accepted"),
        (0, car, 0.8, "proposed"),
        (1, car, 0.4, "proposed"),
        (2, person, 0.7, "rejected"),
    ]:
        create_annotation(
            session, batch=batch, image_id=images[image_idx].id, category_id=cat.id, bbox=[1, 1, 5, 5],
            score=score, status=status,
        )  # fmt: skip
    session.commit()
    return {"car": car.id, "person": person.id, "first": images[0].id}


def _names(rows: list[Image]) -> list[str]:
    return [r.file_name for r in rows]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["0.jpg", "1.jpg", "2.jpg", "3.jpg", "4.jpg", "5.jpg"]),
        ({"category": "car"}, ["0.jpg", "1.jpg"]),
        ({"category": "person"}, ["2.jpg"]),
        ({"status": "accepted"}, ["0.jpg"]),
        ({"category": "car", "status": "proposed"}, ["0.jpg", "1.jpg"]),
        ({"min_score": 0.75}, ["0.jpg"]),
        ({"max_score": 0.5}, ["1.jpg"]),
        ({"min_score": 0.5, "max_score": 0.75}, ["2.jpg"]),
        ({"without_annotations": True}, ["3.jpg", "4.jpg", "5.jpg"]),
        ({"without_annotations": True, "category": "car"}, ["2.jpg", "3.jpg", "4.jpg", "5.jpg"]),
        ({"without_annotations": True, "status": "proposed"}, ["2.jpg", "3.jpg", "4.jpg", "5.jpg"]),
        (
            {"without_annotations": True, "category": "car", "status": "accepted"},
            ["1.jpg", "2.jpg", "3.jpg", "4.jpg", "5.jpg"],
        ),
        ({"without_annotations": True, "min_score": 0.5}, ["1.jpg", "3.jpg", "4.jpg", "5.jpg"]),
        ({"category": "car", "min_score": 0.85}, ["0.jpg"]),
    ],
)
def test_list_filters(
    session: Session, project: Project, labelled: dict[str, int], filters: dict, expected: list[str]
) -> None:
    kwargs = dict(filters)
    if "category" in kwargs:
        kwargs["category_id"] = labelled[kwargs.pop("category")]
    rows, total = list_images(session, project_id=project.id, **kwargs)
    assert _names(rows) == expected
    assert total == len(expected)


def test_list_pages(session: Session, project: Project, labelled: dict[str, int]) -> None:
    rows, total = list_images(session, project_id=project.id, offset=2, limit=3)
    assert _names(rows) == ["2.jpg", "3.jpg", "4.jpg"] and total == 6
    rows, total = list_images(session, project_id=project.id, offset=10, limit=3)
    assert rows == [] and total == 6


@pytest.mark.parametrize(("offset", "limit"), [(-1, 10), (0, 0), (0, 5000)])
def test_list_refuses_bad_paging(session: Session, project: Project, offset: int, limit: int) -> None:
    with pytest.raises(ValueError, match=f"got offset={offset}, limit={limit}"):
        list_images(session, project_id=project.id, offset=offset, limit=limit)


def test_class_counts(session: Session, project: Project, labelled: dict[str, int]) -> None:
    assert class_counts(session, project_id=project.id) == {"car": 3, "person": 1, "bus": 0}
    assert class_counts(session, project_id=project.id, status="proposed") == {
        "car": 2,
        "person": 0,
        "bus": 0,
    }
    by_status = class_status_counts(session, project_id=project.id)
    assert by_status["car"] == {"proposed": 2, "accepted": 1, "rejected": 0}
    assert by_status["person"] == {"proposed": 0, "accepted": 0, "rejected": 1}
    assert by_status["bus"] == {"proposed": 0, "accepted": 0, "rejected": 0}


def test_bad_status_filter_is_refused(session: Session, project: Project) -> None:
    with pytest.raises(ValueError, match="'maybe'"):
        class_counts(session, project_id=project.id, status="maybe")


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, list(range(8))),
        ({"category": "car"}, [2, 5]),
        ({"category": "car", "status": "accepted"}, [5]),
        ({"status": "proposed"}, [2, 6]),
        ({"without_annotations": True}, [0, 1, 3, 4, 7]),
        ({"without_annotations": True, "category": "car"}, [0, 1, 3, 4, 6, 7]),
        ({"min_score": 0.5}, [2]),
    ],
)
def test_list_one_videos_frames_with_the_same_filters(
    session: Session, tmp_path, photos, filters: dict, expected: list[int]
) -> None:
    """``video_id`` narrows every filter to that video's frames (photos and other videos left out)."""
    from sqlmodel import col, select

    from store.ingest import ingest
    from tests.store.video_clips import moving_squares

    clip = moving_squares(tmp_path / "sq.mp4", frames=8)
    report = ingest(session, home=tmp_path / "home", project_name="v", source=clip)
    ingest(session, home=tmp_path / "home", project_name="v", source=photos["bus.jpg"].parent)
    pid, video_id = report.project_id, report.videos[0].video_id
    car, dog = ensure_categories(session, project_id=pid, names=["car", "dog"])
    ordered = select(Image).where(Image.video_id == video_id).order_by(col(Image.frame_index))
    frames = list(session.exec(ordered))
    photo = session.exec(select(Image).where(Image.project_id == pid, col(Image.video_id).is_(None))).first()
    batch = begin_change(session, project_id=pid, actor="t", description="seed")
    for image, category, status, score in [
        (frames[2], car, "proposed", 0.9), (frames[5], car, "accepted", 0.2),
        (frames[6], dog, "proposed", None), (photo, car, "proposed", 0.9),
    ]:  # fmt: skip
        create_annotation(
            session, batch=batch, image_id=image.id, category_id=category.id, bbox=[1, 1, 9, 9],
            status=status, score=score,
        )  # fmt: skip
    session.commit()
    kwargs = dict(filters)
    if "category" in kwargs:
        kwargs["category_id"] = car.id if kwargs.pop("category") == "car" else dog.id
    rows, total = list_images(session, project_id=pid, video_id=video_id, limit=100, **kwargs)
    assert [r.frame_index for r in rows] == expected and total == len(expected)
