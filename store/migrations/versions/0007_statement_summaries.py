"""Bulk writes on PostgreSQL: summaries and NOTIFY per statement; the "by status" image list indexed.

Profiled at 20k rows on PostgreSQL (fsync off): the per-row summary trigger (0002) cost 7.5 of the
12.1 s an executemany took, 1,660 rows/s; with user triggers disabled the same insert ran at
6,200 rows/s. Each row re-updated the same few ``classcount`` rows and its image's row, and in one
transaction every update of a row leaves a version that lookups walk past, so the cost per row
grew with the batch (297 rows/s at 100k). Here PostgreSQL's summary triggers become statement
level with transition tables: one statement's rows are summed per (class, status), per (image,
class, status) and per image, and each summary row is written once per statement. An update
counts its old rows out and its new rows in; rows whose image, class and status did not change
cancel out and write nothing. The price is on one-row statements (the repository's writes): the
statement trigger plans one CTE statement per call, 0.5-1.1 ms more per one-row INSERT than the
row trigger (0.5-0.8 ms before) on a 2-core machine at load 2-4; ``set_status`` of 2,000
annotations (the ORM's one UPDATE per row) took 4.0-4.2 s instead of 3.0-3.9 s.
``tr_projectevent_notify`` (0005) sends one NOTIFY per project per statement instead of one per
row. The BEFORE INSERT trigger that draws outbox ids in commit order stays per row (it sets the
row's id). SQLite keeps its row triggers: it has no statement-level ones.

Both engines get a partial index per status of the images having an annotation of that status:
the "by status" list (``n_<status> > 0``, spelled as in ``store.models.HAS_STATUS``) reads one
index range in id order instead of counting and paging through every image of the project.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 16:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("proposed", "accepted", "rejected")
CHANNEL = "labelwright_events"  # store.notify.CHANNEL (0005 keeps the same copy)
SUMMARY_TRIGGERS = tuple(f"tr_annotation_summary_{o}" for o in ("insert", "delete", "update"))

# The signed rows of one statement: (project, image, class, status, +1 counted in / -1 counted out).
_DELTAS = {
    "INSERT": "SELECT project_id, image_id, category_id, status::text AS status, 1 AS d FROM new_rows",
    "DELETE": "SELECT project_id, image_id, category_id, status::text AS status, -1 AS d FROM old_rows",
    "UPDATE": (
        "SELECT project_id, image_id, category_id, status::text AS status, -1 AS d FROM old_rows "
        "UNION ALL SELECT project_id, image_id, category_id, status::text, 1 FROM new_rows"
    ),
}


def _apply(delta: str) -> str:
    """One statement adding the summed ``delta`` rows to classcount, imageclass and the image counts.

    Data-modifying CTEs, so the trigger plans and runs one statement (a one-row write pays little
    more than a row trigger's). They all see the summaries as they were before the statement: an
    (image, class, status) pair whose count reaches 0 is deleted (``gone``) and left out of the
    upsert (``kept``), so no row is touched twice.
    """
    per_status = ", ".join(f"sum(d * CAST(status = '{s}' AS INTEGER)) AS {s}" for s in STATUSES)
    changed = " OR ".join(f"s.{s} <> 0" for s in STATUSES)
    key = "c.image_id = p.image_id AND c.category_id = p.category_id AND c.status = p.status"
    return f"""
    WITH delta AS ({delta}),
    classes AS (
        INSERT INTO classcount (project_id, category_id, status, n)
        SELECT project_id, category_id, status, sum(d) FROM delta
        GROUP BY project_id, category_id, status HAVING sum(d) <> 0
        ON CONFLICT (category_id, status) DO UPDATE SET n = classcount.n + EXCLUDED.n
    ),
    pairs AS (
        SELECT image_id, category_id, status, project_id, sum(d) AS n FROM delta
        GROUP BY image_id, category_id, status, project_id HAVING sum(d) <> 0
    ),
    gone AS (DELETE FROM imageclass c USING pairs p WHERE {key} AND c.n + p.n <= 0),
    kept AS (
        INSERT INTO imageclass (image_id, category_id, status, project_id, n)
        SELECT image_id, category_id, status, project_id, n FROM pairs p
        WHERE NOT EXISTS (SELECT 1 FROM imageclass c WHERE {key} AND c.n + p.n <= 0)
        ON CONFLICT (image_id, category_id, status) DO UPDATE SET n = imageclass.n + EXCLUDED.n
    )
    UPDATE image SET {", ".join(f"n_{s} = n_{s} + s.{s}" for s in STATUSES)}
        FROM (SELECT image_id, {per_status} FROM delta GROUP BY image_id) s
        WHERE image.id = s.image_id AND ({changed})"""


def _statement_functions() -> str:
    """The trigger functions; each runs its statement by EXECUTE, so it is planned at every call.

    A plan PL/pgSQL cached would be reused for the session: one made while ``imageclass`` was
    empty (a nested loop over a sequential scan) took 62 s for the next 50k-row COPY, instead of
    about 1 s with a plan made for the table's size at that moment.
    """
    return "\n".join(
        f"""CREATE OR REPLACE FUNCTION lw_annotation_summary_{op_name.lower()}() RETURNS trigger AS $$
BEGIN
    EXECUTE $q${_apply(delta)}$q$;
    RETURN NULL;
END $$ LANGUAGE plpgsql;"""
        for op_name, delta in _DELTAS.items()
    )


_REFERENCING = {
    "INSERT": "REFERENCING NEW TABLE AS new_rows",
    "DELETE": "REFERENCING OLD TABLE AS old_rows",
    "UPDATE": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
}

PG_ROW_TRIGGERS = {  # 0002's, restored by the downgrade
    "tr_annotation_summary_insert": "AFTER INSERT ON annotation FOR EACH ROW",
    "tr_annotation_summary_delete": "AFTER DELETE ON annotation FOR EACH ROW",
    "tr_annotation_summary_update": (
        "AFTER UPDATE OF image_id, category_id, status ON annotation FOR EACH ROW "
        "WHEN (OLD.image_id IS DISTINCT FROM NEW.image_id OR OLD.category_id IS DISTINCT FROM "
        "NEW.category_id OR OLD.status IS DISTINCT FROM NEW.status)"
    ),
}

PG_NOTIFY_PER_STATEMENT = f"""
CREATE OR REPLACE FUNCTION lw_projectevent_notify_rows() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', p::text) FROM (SELECT DISTINCT project_id AS p FROM new_rows) s;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS tr_projectevent_notify ON projectevent;
CREATE TRIGGER tr_projectevent_notify AFTER INSERT ON projectevent
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION lw_projectevent_notify_rows();
"""

PG_NOTIFY_PER_ROW = """
DROP TRIGGER IF EXISTS tr_projectevent_notify ON projectevent;
DROP FUNCTION IF EXISTS lw_projectevent_notify_rows();
CREATE TRIGGER tr_projectevent_notify AFTER INSERT ON projectevent
    FOR EACH ROW EXECUTE FUNCTION lw_projectevent_notify();
"""


def _status_indexes(create: bool) -> None:
    for status in STATUSES:
        name = f"ix_image_has_{status}"
        if not create:
            op.drop_index(name, table_name="image")
            continue
        where = sa.text(f"n_{status} > 0")  # store.models.HAS_STATUS
        op.create_index(name, "image", ["project_id", "id"], sqlite_where=where, postgresql_where=where)


def upgrade() -> None:
    _status_indexes(create=True)
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_statement_functions())
    for name in SUMMARY_TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON annotation")
    for op_name, referencing in _REFERENCING.items():
        op.execute(
            f"CREATE TRIGGER tr_annotation_summary_{op_name.lower()} AFTER {op_name} ON annotation "
            f"{referencing} FOR EACH STATEMENT EXECUTE FUNCTION lw_annotation_summary_{op_name.lower()}()"
        )
    op.execute(PG_NOTIFY_PER_STATEMENT)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_NOTIFY_PER_ROW)
        for name in SUMMARY_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON annotation")
        for op_name in _DELTAS:
            op.execute(f"DROP FUNCTION IF EXISTS lw_annotation_summary_{op_name.lower()}()")
        for name, when in PG_ROW_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION lw_annotation_summary()")
    _status_indexes(create=False)
