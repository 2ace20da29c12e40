from __future__ import annotations

import pytest
from sqlmodel import Session, select

from store.annotations import create_annotation
from store.categories import ensure_categories
from store.history import begin_change
from store.jobs import create_job
from store.models import Annotation, AnnotationEvent, Image, Project
from store.projects import (
    create_project,
    delete_project,
    get_or_create_project,
    get_project_by_name,
    list_projects,
)


def test_create_and_find(session: Session) -> None:
    created = create_project(session, name="  cars ", description="street scenes")
    assert created.id is not None and created.name == "cars"
    assert get_project_by_name(session, name="cars") == created
    assert get_project_by_name(session, name="bikes") is None


@pytest.mark.parametrize("name", ["", "   "])
def test_empty_name_is_refused(session: Session, name: str) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        create_project(session, name=name)


def test_duplicate_name_is_refused_clearly(session: Session, project: Project) -> None:
    with pytest.raises(ValueError, match="a project named 'test project' already exists"):
        create_project(session, name="test project")


def test_get_or_create_is_idempotent(session: Session) -> None:
    first = get_or_create_project(session, name="a")
    assert get_or_create_project(session, name="a").id == first.id
    assert [p.name for p in list_projects(session)] == ["a"]


def test_list_is_sorted_by_name(session: Session) -> None:
    for name in ("zebra", "apple", "mango"):
        create_project(session, name=name)
    assert [p.name for p in list_projects(session)] == ["apple", "mango", "zebra"]


def test_delete_removes_everything_of_that_project_only(
    session: Session, project: Project, image: Image
) -> None:
    other = create_project(session, name="other")
    (car,) = ensure_categories(session, project_id=project.id, names=["car"])
    batch = begin_change(session, project_id=project.id, actor="alice", description="box")
    create_annotation(session, batch=batch, image_id=image.id, category_id=car.id, bbox=[1, 2, 3, 4])
    session.commit()
    create_job(session, project_id=project.id, kind="auto_label")
    assert delete_project(session, project_id=project.id) is True
    assert list_projects(session) == [other]
    assert session.exec(select(Annotation)).all() == []
    assert session.exec(select(AnnotationEvent)).all() == []
    assert session.exec(select(Image)).all() == []
    assert delete_project(session, project_id=project.id) is False
