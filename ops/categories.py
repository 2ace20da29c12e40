"""Classes of a project: list with counts, create, rename, merge (through history), delete."""

from __future__ import annotations

from collections.abc import Sequence

from ops import names
from ops.caller import Caller
from ops.errors import Conflict
from ops.filters import category_by_id
from ops.unit import Env, change, read
from store import categories as repo
from store.images import class_status_counts
from store.models import Category


def list_(env: Env, caller: Caller | None, project_id: int) -> list[tuple[Category, dict[str, int]]]:
    """Classes in creation order with annotation counts per status."""
    with read(env, caller, "category.read", project_id) as unit:
        counts = class_status_counts(unit.session, project_id=project_id)
        return [
            (c, counts.get(c.name, {})) for c in repo.list_categories(unit.session, project_id=project_id)
        ]


def ensure(env: Env, caller: Caller | None, project_id: int, labels: Sequence[str]) -> list[Category]:
    """The classes named ``labels`` in that order, creating the missing ones (an existing name
    returns its class)."""
    cleaned = [names.class_name(n) for n in labels]
    with change(env, caller, "category.create", project_id) as unit:
        before = {c.name for c in repo.list_categories(unit.session, project_id=project_id)}
        out = repo.ensure_categories(unit.session, project_id=project_id, names=cleaned)
        new = [c.id or 0 for c in out if c.name not in before]
        if new:
            unit.event("category", "created", new)
        return out


def rename(env: Env, caller: Caller | None, project_id: int, category_id: int, *, name: str) -> Category:
    """Rename a class in place (its annotations follow: they reference its id)."""
    clean = names.class_name(name)
    with change(env, caller, "category.rename", project_id) as unit:
        category_by_id(unit.session, project_id, category_id)
        other = repo.get_category_by_name(unit.session, project_id=project_id, name=clean)
        if other is not None and other.id != category_id:
            raise Conflict(
                f"project already has a class named {clean!r} (id {other.id}); merge the two instead"
            )
        category = repo.rename_category(unit.session, category_id=category_id, name=clean)
        assert category is not None
        unit.event("category", "updated", [category_id])
        return category


def merge(
    env: Env, caller: Caller | None, project_id: int, *, source_ids: Sequence[int], target_id: int
) -> tuple[int, int]:
    """Move every annotation of the sources to the target, as one undoable change."""
    with change(env, caller, "category.merge", project_id) as unit:
        target = category_by_id(unit.session, project_id, target_id)
        for source_id in source_ids:
            category_by_id(unit.session, project_id, source_id)
        batch = unit.batch(f"merge into {target.name}")
        moved = repo.merge_categories(unit.session, batch=batch, source_ids=source_ids, target_id=target_id)
        unit.event("category", "merged", [target_id, *source_ids])
        return moved, batch.id or 0


def delete(env: Env, caller: Caller | None, project_id: int, category_id: int) -> None:
    """Delete an empty class (Invalid while annotations use it)."""
    with change(env, caller, "category.delete", project_id) as unit:
        category_by_id(unit.session, project_id, category_id)
        repo.delete_category(unit.session, category_id=category_id)
        unit.event("category", "deleted", [category_id])
