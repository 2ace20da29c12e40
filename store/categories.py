"""Categories (classes) of a project: ensure, rename, merge, list; each with a stable color."""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from store.annotations import relabel
from store.errors import NameTaken
from store.models import Annotation, Category, ChangeBatch, ClassCount

# Tableau-20 style: the first twenty classes of a project get visually distinct colors.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)  # fmt: skip


def class_color(index: int) -> str:
    """The color of the ``index``-th class of a project (0-based).

    Stored on the row when the class is created, so renames and merges never repaint a class; past
    the palette, golden-ratio hue steps keep neighbours apart.
    """
    if index < len(PALETTE):
        return PALETTE[index]
    hue = (index * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.65, 0.9)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def _clean(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise ValueError(f"category name must be a non-empty string, got {name!r}")
    return cleaned


def list_categories(session: Session, *, project_id: int) -> list[Category]:
    """The project's categories in creation order (which is also COCO id order on export)."""
    return list(
        session.exec(select(Category).where(Category.project_id == project_id).order_by(col(Category.id)))
    )


def get_category(session: Session, *, category_id: int) -> Category | None:
    return session.get(Category, category_id)


def get_category_by_name(session: Session, *, project_id: int, name: str) -> Category | None:
    return session.exec(
        select(Category).where(Category.project_id == project_id, Category.name == _clean(name))
    ).first()


def ensure_categories(session: Session, *, project_id: int, names: Sequence[str]) -> list[Category]:
    """Return the categories named ``names`` in that order, creating the missing ones (flushes; the
    caller commits, so a job's per-image transaction is never committed early)."""
    cleaned = [_clean(n) for n in names]
    existing = {c.name: c for c in list_categories(session, project_id=project_id)}
    count = len(existing)
    for name in dict.fromkeys(cleaned):
        if name not in existing:
            existing[name] = Category(project_id=project_id, name=name, color=class_color(count))
            session.add(existing[name])
            count += 1
    session.flush()
    return [existing[n] for n in cleaned]


def rename_category(session: Session, *, category_id: int, name: str) -> Category | None:
    """Rename a class (annotations follow, they reference its id); ValueError if the name is taken."""
    category = session.get(Category, category_id)
    if category is None:
        return None
    name = _clean(name)
    other = get_category_by_name(session, project_id=category.project_id, name=name)
    if other is not None and other.id != category_id:
        raise NameTaken(
            f"project already has a category named {name!r} (id {other.id}); merge the two instead"
        )
    category.name = name
    session.add(category)
    session.flush()
    return category


def merge_categories(
    session: Session, *, batch: ChangeBatch, source_ids: Sequence[int], target_id: int
) -> int:
    """Move every annotation of ``source_ids`` to ``target_id`` inside ``batch``; return how many.

    The moves are ordinary relabels in the event log, so undo brings them back. The source
    categories stay (empty) for that reason; ``delete_category`` removes them once you are sure.
    The caller commits, like every write that goes through a batch.
    """
    target = session.get(Category, target_id)
    if target is None or target.project_id != batch.project_id:
        raise ValueError(f"target category {target_id} is not a category of project {batch.project_id}")
    sources = [i for i in dict.fromkeys(source_ids) if i != target_id]
    for source_id in sources:
        source = session.get(Category, source_id)
        if source is None or source.project_id != batch.project_id:
            raise ValueError(f"source category {source_id} is not a category of project {batch.project_id}")
    ids = list(
        session.exec(
            select(Annotation.id).where(
                Annotation.project_id == batch.project_id, col(Annotation.category_id).in_(sources)
            )
        )
    )
    return relabel(session, batch=batch, ids=[i for i in ids if i is not None], category_id=target_id)


def delete_category(session: Session, *, category_id: int) -> bool:
    """Delete an empty class; ValueError while annotations still use it, False when it is gone."""
    category = session.get(Category, category_id)
    if category is None:
        return False
    used = session.exec(
        select(func.count()).where(
            Annotation.project_id == category.project_id, Annotation.category_id == category_id
        )
    ).one()
    if used:
        raise ValueError(
            f"category {category.name!r} still has {used} annotations; merge or delete them first"
        )
    session.exec(delete(ClassCount).where(col(ClassCount.category_id) == category_id))  # its zero counts
    session.delete(category)
    session.flush()
    return True
