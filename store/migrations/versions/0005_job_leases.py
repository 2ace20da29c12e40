"""Job leases for a queue many worker processes share, and NOTIFY on new project events.

``job.worker`` names the process running a job (``host:pid:token``) and ``job.lease_until`` how
long its claim holds; a heartbeat renews it, and a running job whose lease ran out (its worker
died) is claimed again by another worker, which resumes at the cursor. On PostgreSQL a trigger on
``projectevent`` sends ``NOTIFY labelwright_events`` (payload: the project id), delivered when the
writing transaction commits, so event followers in other processes wake at once instead of
polling (store.notify). SQLite has no NOTIFY: its followers poll.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 10:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "labelwright_events"  # store.notify.CHANNEL; a migration keeps its own copy of the name

PG_NOTIFY = f"""
CREATE OR REPLACE FUNCTION lw_projectevent_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', NEW.project_id::text);
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER tr_projectevent_notify AFTER INSERT ON projectevent
    FOR EACH ROW EXECUTE FUNCTION lw_projectevent_notify();
"""


def upgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("worker", sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("lease_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_NOTIFY)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS tr_projectevent_notify ON projectevent")
        op.execute("DROP FUNCTION IF EXISTS lw_projectevent_notify()")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_column("lease_until")
        batch_op.drop_column("worker")
