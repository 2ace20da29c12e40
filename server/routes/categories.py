"""Categories (classes): list with counts, create, rename, merge (through history), delete; thin
adapters over :mod:`ops.categories`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field

from ops import categories
from server.deps import CallerDep, EnvDep
from store.models import Category

router = APIRouter(prefix="/projects/{project_id}/categories", tags=["categories"])


class CategoryCreate(BaseModel):
    name: str


class CategoryRename(BaseModel):
    name: str


class CategoryMerge(BaseModel):
    source_ids: list[int] = Field(min_length=1, description="Classes whose annotations move to the target.")
    target_id: int


def category_public(category: Category, counts: dict[str, int] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"id": category.id, "name": category.name, "color": category.color}
    if counts is not None:
        data["counts"] = counts
    return data


@router.get("")
def list_(project_id: int, env: EnvDep, caller: CallerDep) -> list[dict[str, Any]]:
    """Classes in creation order, with annotation counts per status."""
    return [category_public(c, counts) for c, counts in categories.list_(env, caller, project_id)]


@router.post("", status_code=status.HTTP_201_CREATED)
def create(project_id: int, body: CategoryCreate, env: EnvDep, caller: CallerDep) -> dict[str, Any]:
    """Create a class (returns the existing one when the name is taken)."""
    (category,) = categories.ensure(env, caller, project_id, [body.name])
    return category_public(category)


@router.patch("/{category_id}")
def rename(
    project_id: int, category_id: int, body: CategoryRename, env: EnvDep, caller: CallerDep
) -> dict[str, Any]:
    """Rename a class in place; 409 when another class has the name (merge the two instead)."""
    return category_public(categories.rename(env, caller, project_id, category_id, name=body.name))


@router.delete("/{category_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete(project_id: int, category_id: int, env: EnvDep, caller: CallerDep) -> Response:
    """Delete a class no annotation uses (422 while some do)."""
    categories.delete(env, caller, project_id, category_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/merge")
def merge(project_id: int, body: CategoryMerge, env: EnvDep, caller: CallerDep) -> dict[str, Any]:
    """Move every annotation of the source classes to the target, as one undoable change."""
    moved, batch_id = categories.merge(
        env, caller, project_id, source_ids=body.source_ids, target_id=body.target_id
    )
    return {"moved": moved, "target_id": body.target_id, "batch_id": batch_id}
