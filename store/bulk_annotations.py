"""Annotations written in bulk: the rows and ``create`` events the repository would write, in two statements.

:func:`store.annotations.create_annotation` builds an ORM object, flushes and snapshots it per
annotation, which at 100,000 rows (a COCO import) costs minutes. :func:`write_annotations` writes
the same rows (same columns, defaults and derived geometry) and the same event log with one
executemany each, so undo and redo treat the batch like any other. JSON columns are bound
pre-serialised by orjson: SQLite stores JSON as text either way and the JSON type reads both
spellings, and ``json.dumps`` (what the JSON type binds with) dominated the inserts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import column as sql_column
from sqlalchemy import insert
from sqlalchemy import table as sql_table
from sqlalchemy import text as sql_text
from sqlmodel import Session

from store.annotations import parse_status
from store.geometry import mask_geometry
from store.models import Annotation, AnnotationEvent, ChangeBatch, Image, utcnow


@dataclass
class PlannedAnnotation:
    """One checked entry, ready to write: its image, class name and geometry."""

    coco_id: Any
    image: Image
    category: str
    bbox: list[float]  # the mask's box, or the clipped box of a box-only entry
    mask: dict[str, Any] | None  # RLE with str counts
    score: float | None
    area: float = 0.0  # foreground pixels (box area for a box-only entry)
    segmentation: list[list[float]] | dict[str, Any] | None = None  # None: derive from the mask
    fidelity: float | None = None
    track_id: int | None = None  # the track it belongs to (a video import), created beforehand


def annotation_rows(
    planned: list[PlannedAnnotation],
    *,
    batch: ChangeBatch,
    category_ids: dict[str, int],
    status: str,
    tool: str,
) -> list[dict[str, Any]]:
    """The column values :func:`store.annotations.create_annotation` would write, one dict per row.

    Geometry: the planned mask's box and area; its segmentation is the entry's own polygons where
    planned, else :func:`store.geometry.mask_geometry`'s, the repository's rule.
    """
    now = utcnow()
    state = parse_status(status)
    rows = []
    for p in planned:
        segmentation, fidelity = p.segmentation, p.fidelity
        if p.mask is not None and segmentation is None:
            geometry = mask_geometry(p.mask)
            segmentation, fidelity = geometry.segmentation, float(geometry.fidelity)
        rows.append(
            {
                "project_id": batch.project_id,
                "image_id": p.image.id,
                "category_id": category_ids[p.category],
                "bbox": p.bbox,
                "mask": p.mask,
                "segmentation": segmentation,
                "fidelity": fidelity,
                "area": p.area,
                "score": p.score,
                "status": state,
                "tool": tool,
                "model": "",
                "prompt": "",
                "threshold": None,
                "job_id": None,
                "agent_run_id": None,
                "track_id": p.track_id,
                "author": batch.actor,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
    if rows and (missing := {c.name for c in Annotation.__table__.columns} - {"id"} - rows[0].keys()):  # type: ignore[attr-defined]
        raise AssertionError(f"bulk rows lack annotation columns {sorted(missing)}: add them here")
    return rows


_JSON_COLUMNS = ("bbox", "mask", "segmentation")
_SHARED = ("status", "created_at", "updated_at")  # one value for every row of a call: bound once


def _snapshot(row: dict[str, Any], annotation_id: int, shared: dict[str, Any]) -> dict[str, Any]:
    """:func:`store.history.snapshot` of the row as stored, built from its values (no ORM load).

    ``row`` holds every column but the id (:func:`annotation_rows`); ``shared`` the JSON forms of
    its status and timestamps.
    """
    return {"id": annotation_id, **row, **shared}


def _raw(table: Any) -> Any:
    """``table`` with untyped columns: we bind values as stored (JSON by orjson, shared values once).

    The typed columns' per-value bind processing (JSON, the UTC datetime check, the enum) cost
    more than SQLite's inserts; the other columns hold ints, floats, str and None, stored as is.
    """
    return sql_table(table.name, *(sql_column(c.name) for c in table.columns))


def _stored(table: Any, name: str, value: Any, session: Session) -> Any:
    """``value`` as column ``name`` of ``table`` binds it (its type's processing, done once)."""
    dialect = session.get_bind().dialect
    processor = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
    return processor(value) if processor else value


def _insert_many(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """One executemany of ``rows`` (dicts with the same keys, values as stored) into ``table``.

    On SQLite the statement goes to the driver as it is (``?`` placeholders, one tuple per row):
    SQLAlchemy's per-row parameter processing cost 0.3 of 1.3 CPU-s per 19,800 imported rows, and
    the raw columns bind nothing it would change. PostgreSQL keeps SQLAlchemy's batched insert.
    """
    if session.get_bind().dialect.name != "sqlite":
        session.execute(insert(_raw(table)), rows)
        return
    names = list(rows[0])
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    session.connection().exec_driver_sql(sql, [tuple(row[n] for n in names) for row in rows])


def write_annotations(
    session: Session,
    *,
    batch: ChangeBatch,
    planned: list[PlannedAnnotation],
    category_ids: dict[str, int],
    status: str,
    tool: str,
) -> list[int]:
    """Insert the planned annotations and their ``create`` events into ``batch``; flushes, no commit.

    Two executemany statements (rows, then events) instead of an ORM object, a flush and a
    snapshot per row: the same rows and the same event log, so undo and redo of an import work as
    for any batch. The rows get consecutive ids: the session holds SQLite's write lock since the
    batch was flushed, and AUTOINCREMENT hands out one more than the last id per row.
    """
    rows = annotation_rows(planned, batch=batch, category_ids=category_ids, status=status, tool=tool)
    if not rows:
        return []
    session.flush()
    table = Annotation.__table__  # type: ignore[attr-defined]
    stamp = rows[0]["created_at"].isoformat()
    as_json = {"status": rows[0]["status"].value, "created_at": stamp, "updated_at": stamp}
    shared = {name: _stored(table, name, rows[0][name], session) for name in _SHARED}
    _insert_many(
        session,
        table,
        [
            {**row, **{k: orjson.dumps(row[k]).decode() for k in _JSON_COLUMNS}, **shared}  # None: JSON null
            for row in rows
        ],
    )  # fmt: skip
    last = session.execute(sql_text("SELECT max(id) FROM annotation")).scalar_one()
    ids = list(range(last - len(rows) + 1, last + 1))
    mine = session.execute(
        sql_text("SELECT count(*) FROM annotation WHERE id BETWEEN :lo AND :hi AND tool = :tool"),
        {"lo": ids[0], "hi": ids[-1], "tool": tool},
    ).scalar_one()
    if mine != len(rows):
        raise RuntimeError(
            f"bulk insert ids not consecutive: {mine} of {len(rows)} rows in {ids[0]}..{ids[-1]}"
        )
    _insert_many(
        session,
        AnnotationEvent.__table__,  # type: ignore[attr-defined]
        [
            {"project_id": batch.project_id, "batch_id": batch.id, "annotation_id": annotation_id,
             "action": "create", "before": "null", "actor": batch.actor, "created_at": shared["created_at"],
             "after": orjson.dumps(_snapshot(row, annotation_id, as_json)).decode()}
            for annotation_id, row in zip(ids, rows, strict=True)
        ],
    )  # fmt: skip
    return ids
