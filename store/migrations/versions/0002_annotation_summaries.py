"""Annotation summaries kept by triggers: per-class counts, image/class pairs, per-image status counts.

At 1M annotations, counting or probing the annotation table for the UI's lists costs 150-500 ms
even on covering indexes. These tables are derived data that SQLite triggers on ``annotation``
keep exact for every writer (repository functions, bulk imports, raw SQL), so the lists and counts
read tens of rows or one index range instead. The upgrade backfills them from existing rows.
On PostgreSQL the same statements run in a plpgsql trigger function (``PG_FUNCTIONS``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 06:08:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("proposed", "accepted", "rejected")


def _add(row: str) -> str:
    """Statements counting annotation ``row`` (NEW or OLD) in."""
    per_status = ", ".join(f"n_{s} = n_{s} + ({row}.status = '{s}')" for s in STATUSES)
    return f"""
    INSERT INTO classcount (project_id, category_id, status, n)
        VALUES ({row}.project_id, {row}.category_id, {row}.status, 1)
        ON CONFLICT (category_id, status) DO UPDATE SET n = n + 1;
    INSERT INTO imageclass (image_id, category_id, status, project_id, n)
        VALUES ({row}.image_id, {row}.category_id, {row}.status, {row}.project_id, 1)
        ON CONFLICT (image_id, category_id, status) DO UPDATE SET n = n + 1;
    UPDATE image SET {per_status} WHERE id = {row}.image_id;"""


def _remove(row: str) -> str:
    """Statements counting annotation ``row`` (NEW or OLD) out."""
    per_status = ", ".join(f"n_{s} = n_{s} - ({row}.status = '{s}')" for s in STATUSES)
    key = f"image_id = {row}.image_id AND category_id = {row}.category_id AND status = {row}.status"
    return f"""
    UPDATE classcount SET n = n - 1 WHERE category_id = {row}.category_id AND status = {row}.status;
    DELETE FROM imageclass WHERE {key} AND n <= 1;
    UPDATE imageclass SET n = n - 1 WHERE {key};
    UPDATE image SET {per_status} WHERE id = {row}.image_id;"""


TRIGGERS = {
    "tr_annotation_summary_insert": f"AFTER INSERT ON annotation BEGIN {_add('NEW')}\nEND",
    "tr_annotation_summary_delete": f"AFTER DELETE ON annotation BEGIN {_remove('OLD')}\nEND",
    "tr_annotation_summary_update": (
        "AFTER UPDATE OF image_id, category_id, status ON annotation "
        "WHEN OLD.image_id IS NOT NEW.image_id OR OLD.category_id IS NOT NEW.category_id "
        f"OR OLD.status IS NOT NEW.status BEGIN {_remove('OLD')} {_add('NEW')}\nEND"
    ),
}


PG_FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION lw_annotation_count(
    p_project integer, p_image integer, p_category integer, p_status text, d integer
) RETURNS void AS $$
BEGIN
    IF d > 0 THEN
        INSERT INTO classcount (project_id, category_id, status, n)
            VALUES (p_project, p_category, p_status, 1)
            ON CONFLICT (category_id, status) DO UPDATE SET n = classcount.n + 1;
        INSERT INTO imageclass (image_id, category_id, status, project_id, n)
            VALUES (p_image, p_category, p_status, p_project, 1)
            ON CONFLICT (image_id, category_id, status) DO UPDATE SET n = imageclass.n + 1;
    ELSE
        UPDATE classcount SET n = n - 1 WHERE category_id = p_category AND status = p_status;
        DELETE FROM imageclass
            WHERE image_id = p_image AND category_id = p_category AND status = p_status AND n <= 1;
        UPDATE imageclass SET n = n - 1
            WHERE image_id = p_image AND category_id = p_category AND status = p_status;
    END IF;
    UPDATE image SET {", ".join(f"n_{s} = n_{s} + d * CAST(p_status = '{s}' AS INTEGER)" for s in STATUSES)}
        WHERE id = p_image;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION lw_annotation_summary() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        PERFORM lw_annotation_count(OLD.project_id, OLD.image_id, OLD.category_id, OLD.status::text, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM lw_annotation_count(NEW.project_id, NEW.image_id, NEW.category_id, NEW.status::text, 1);
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
"""

PG_TRIGGERS = {
    "tr_annotation_summary_insert": "AFTER INSERT ON annotation FOR EACH ROW",
    "tr_annotation_summary_delete": "AFTER DELETE ON annotation FOR EACH ROW",
    "tr_annotation_summary_update": (
        "AFTER UPDATE OF image_id, category_id, status ON annotation FOR EACH ROW "
        "WHEN (OLD.image_id IS DISTINCT FROM NEW.image_id OR OLD.category_id IS DISTINCT FROM "
        "NEW.category_id OR OLD.status IS DISTINCT FROM NEW.status)"
    ),
}


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_table(
        "classcount",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("category_id", "status"),
    )
    with op.batch_alter_table("classcount", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_classcount_project_id"), ["project_id"], unique=False)

    op.create_table(
        "imageclass",
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("image_id", "category_id", "status"),
    )
    with op.batch_alter_table("imageclass", schema=None) as batch_op:
        batch_op.create_index(
            "ix_imageclass_project_category_image",
            ["project_id", "category_id", "image_id", "status"],
            unique=False,
        )

    with op.batch_alter_table("image", schema=None) as batch_op:
        for status in STATUSES:
            batch_op.add_column(sa.Column(f"n_{status}", sa.Integer(), server_default="0", nullable=False))

    op.execute(
        "INSERT INTO classcount (project_id, category_id, status, n) "
        "SELECT project_id, category_id, status, count(*) FROM annotation "
        "GROUP BY project_id, category_id, status"
    )
    op.execute(
        "INSERT INTO imageclass (image_id, category_id, status, project_id, n) "
        "SELECT image_id, category_id, status, project_id, count(*) FROM annotation "
        "GROUP BY image_id, category_id, status, project_id"
    )
    for status in STATUSES:
        op.execute(
            f"UPDATE image SET n_{status} = (SELECT count(*) FROM annotation a "
            f"WHERE a.image_id = image.id AND a.status = '{status}')"
        )
    if _postgresql():
        op.execute(PG_FUNCTIONS)
        for name, when in PG_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION lw_annotation_summary()")
        return
    for name, body in TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (" ON annotation" if _postgresql() else ""))
    if _postgresql():
        op.execute("DROP FUNCTION IF EXISTS lw_annotation_summary()")
        op.execute("DROP FUNCTION IF EXISTS lw_annotation_count(integer, integer, integer, text, integer)")
    with op.batch_alter_table("image", schema=None) as batch_op:
        for status in reversed(STATUSES):
            batch_op.drop_column(f"n_{status}")

    with op.batch_alter_table("imageclass", schema=None) as batch_op:
        batch_op.drop_index("ix_imageclass_project_category_image")

    op.drop_table("imageclass")
    with op.batch_alter_table("classcount", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_classcount_project_id"))

    op.drop_table("classcount")
