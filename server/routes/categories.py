"""Categories (classes): list with counts, create, rename, merge (merges go through history)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, Field
from sqlmodel import Session

from server.deps import Annotator, BusDep, Reviewer, SessionDep, Viewer, bad_input, not_found
from server.events import Event
from store.categories import (
    ensure_categories,
    get_category,
    list_categories,
    merge_categories,
    rename_category,
)
from store.history import begin_change
from store.images import class_status_counts
from store.models import Category

router = APIRouter(prefix="/projects/{project_id}/categories", tags=["categories"])


class CategoryCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class CategoryRename(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class CategoryMerge(BaseModel):
    source_ids: list[int] = Field(min_length=1, description="Classes whose annotations move to the target.")
    target_id: int


def category_public(category: Category, counts: dict[str, int] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"id": category.id, "name": category.name, "color": category.color}
    if counts is not None:
        data["counts"] = counts
    return data


def project_category(session: Session, project_id: int, category_id: int) -> Category:
    category = get_category(session, category_id=category_id)
    if category is None or category.project_id != project_id:
        raise not_found(f"category {category_id} in project {project_id}")
    return category


@router.get("")
def list_(access: Viewer, session: SessionDep) -> list[dict[str, Any]]:
    """Classes in creation order, with annotation counts per status."""
    counts = class_status_counts(session, project_id=access.project_id)
    return [
        category_public(c, counts.get(c.name)) for c in list_categories(session, project_id=access.project_id)
    ]


@router.post("", status_code=status.HTTP_201_CREATED)
def create(body: CategoryCreate, access: Annotator, session: SessionDep, bus: BusDep) -> dict[str, Any]:
    """Create a class (returns the existing one when the name is taken)."""
    with bad_input():
        (category,) = ensure_categories(session, project_id=access.project_id, names=[body.name])
    bus.publish(Event(access.project_id, "category", "created", [category.id or 0], actor=access.actor))
    return category_public(category)


@router.patch("/{category_id}")
def rename(
    category_id: int, body: CategoryRename, access: Reviewer, session: SessionDep, bus: BusDep
) -> dict[str, Any]:
    project_category(session, access.project_id, category_id)
    with bad_input():
        category = rename_category(session, category_id=category_id, name=body.name)
    assert category is not None
    bus.publish(Event(access.project_id, "category", "updated", [category_id], actor=access.actor))
    return category_public(category)


@router.post("/merge")
def merge(body: CategoryMerge, access: Reviewer, session: SessionDep, bus: BusDep) -> dict[str, Any]:
    """Move every annotation of the source classes to the target, as one undoable change."""
    with bad_input():
        batch = begin_change(
            session,
            project_id=access.project_id,
            actor=access.actor,
            description=f"merge into {body.target_id}",
        )
        moved = merge_categories(session, batch=batch, source_ids=body.source_ids, target_id=body.target_id)
    session.commit()
    bus.publish(
        Event(access.project_id, "category", "merged", [body.target_id, *body.source_ids], actor=access.actor)
    )
    return {"moved": moved, "target_id": body.target_id, "batch_id": batch.id}
