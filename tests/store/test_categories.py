from __future__ import annotations

import re

import pytest
from sqlmodel import Session

from store.annotation_queries import query_annotations
from store.annotations import create_annotation
from store.categories import (
    PALETTE,
    class_color,
    delete_category,
    ensure_categories,
    get_category_by_name,
    list_categories,
    merge_categories,
    rename_category,
)
from store.history import begin_change, undo
from store.models import Image, Project
from store.projects import create_project


def test_ensure_creates_missing_and_keeps_order(session: Session, project: Project) -> None:
    first = ensure_categories(session, project_id=project.id, names=["car", "person"])
    again = ensure_categories(session, project_id=project.id, names=["person", "bus", "car", "bus"])
    assert [c.name for c in again] == ["person", "bus", "car", "bus"]
    assert again[0].id == first[1].id and again[2].id == first[0].id
    assert [c.name for c in list_categories(session, project_id=project.id)] == ["car", "person", "bus"]


def test_names_are_whitespace_normalised(session: Session, project: Project) -> None:
    (cat,) = ensure_categories(session, project_id=project.id, names=["  traffic   light "])
    assert cat.name == "traffic light"
    assert get_category_by_name(session, project_id=project.id, name="traffic light") == cat
    assert get_category_by_name(session, project_id=project.id, name="tree") is None


@pytest.mark.parametrize("name", ["", "  "])
def test_empty_names_are_refused(session: Session, project: Project, name: str) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        ensure_categories(session, project_id=project.id, names=["car", name])
    assert list_categories(session, project_id=project.id) == []


def test_colors_are_distinct_stable_and_per_project(session: Session, project: Project) -> None:
    names = [f"class{i}" for i in range(25)]
    cats = ensure_categories(session, project_id=project.id, names=names)
    colors = [c.color for c in cats]
    assert colors[: len(PALETTE)] == list(PALETTE)
    assert len(set(colors)) == 25
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in colors)
    assert class_color(21) == colors[21]
    renamed = rename_category(session, category_id=cats[3].id, name="truck")
    assert renamed is not None and renamed.color == colors[3]
    other = create_project(session, name="other")
    assert ensure_categories(session, project_id=other.id, names=["x"])[0].color == PALETTE[0]


def test_rename(session: Session, project: Project) -> None:
    car, person = ensure_categories(session, project_id=project.id, names=["car", "person"])
    assert rename_category(session, category_id=car.id, name="automobile").name == "automobile"
    with pytest.raises(ValueError, match="already has a category named 'person'"):
        rename_category(session, category_id=car.id, name="person")
    assert rename_category(session, category_id=9999, name="x") is None


def test_merge_moves_annotations_through_the_log_and_undo_restores(
    session: Session, project: Project, image: Image
) -> None:
    car, auto, bus = ensure_categories(session, project_id=project.id, names=["car", "auto", "bus"])
    batch = begin_change(session, project_id=project.id, actor="alice", description="boxes")
    for cat in (car, auto, auto, bus):
        create_annotation(session, batch=batch, image_id=image.id, category_id=cat.id, bbox=[0, 0, 10, 10])
    session.commit()
    merge = begin_change(session, project_id=project.id, actor="alice", description="merge auto into car")
    assert merge_categories(session, batch=merge, source_ids=[auto.id], target_id=car.id) == 2
    session.commit()
    assert len(query_annotations(session, project_id=project.id, category_id=car.id)) == 3
    assert query_annotations(session, project_id=project.id, category_id=auto.id) == []
    result = undo(session, project_id=project.id, actor="alice")
    assert result is not None and result.affected == 2
    assert len(query_annotations(session, project_id=project.id, category_id=auto.id)) == 2


def test_merge_refuses_categories_of_another_project(session: Session, project: Project) -> None:
    (car,) = ensure_categories(session, project_id=project.id, names=["car"])
    other = create_project(session, name="other")
    (foreign,) = ensure_categories(session, project_id=other.id, names=["car"])
    batch = begin_change(session, project_id=project.id, actor="alice", description="merge")
    with pytest.raises(ValueError, match=f"source category {foreign.id} is not a category of project"):
        merge_categories(session, batch=batch, source_ids=[foreign.id], target_id=car.id)


def test_delete_only_empty_categories(session: Session, project: Project, image: Image) -> None:
    car, bus = ensure_categories(session, project_id=project.id, names=["car", "bus"])
    batch = begin_change(session, project_id=project.id, actor="alice", description="box")
    create_annotation(session, batch=batch, image_id=image.id, category_id=car.id, bbox=[0, 0, 10, 10])
    session.commit()
    with pytest.raises(ValueError, match="'car' still has 1 annotations"):
        delete_category(session, category_id=car.id)
    assert delete_category(session, category_id=bus.id) is True
    assert delete_category(session, category_id=bus.id) is False
    assert [c.name for c in list_categories(session, project_id=project.id)] == ["car"]
