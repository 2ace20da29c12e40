"""Job leases for a queue many worker processes share, and NOTIFY on new project events.

``job.worker`` names the process running a job (``host:pid:token``) and ``job.lease_until`` how
long its claim holds; a heartbeat renews it, and a running job whose lease ran out (its worker
died) is claimed again by another worker, which resumes at the cursor. On PostgreSQL a trigger on
``projectevent`` sends ``NOTIFY labelwright_events`` (payload: the project id), delivered when the
writing transaction commits, so event followers in other processes wake at once instead of
polling (store.notify). SQLite has no NOTIFY: its followers poll.

Followers read the outbox by id (``id > last seen``), which needs ids in commit order. SQLite
has one writer at a time, so they are. PostgreSQL hands out sequence values at insert time, and
two transactions can commit in the other order: a follower could read id 11, move past it, and
never see id 10 committed a moment later. So on PostgreSQL a BEFORE INSERT trigger takes a
transaction-level advisory lock and only then draws the row's id: transactions that write events
commit them one after another, in id order (the lock is held from a transaction's first event to
its commit; operations write their events last). Rows must not be inserted with explicit ids.

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

EVENT_ORDER_LOCK = 7_311_203  # pg_advisory_xact_lock key (store.db's migration lock is 7_311_202)

PG_EVENT_TRIGGERS = f"""
CREATE OR REPLACE FUNCTION lw_projectevent_order() RETURNS trigger AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({EVENT_ORDER_LOCK});
    NEW.id := nextval(pg_get_serial_sequence('projectevent', 'id'));
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER tr_projectevent_order BEFORE INSERT ON projectevent
    FOR EACH ROW EXECUTE FUNCTION lw_projectevent_order();


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
        op.execute(PG_EVENT_TRIGGERS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS tr_projectevent_notify ON projectevent")
        op.execute("DROP FUNCTION IF EXISTS lw_projectevent_notify()")
        op.execute("DROP TRIGGER IF EXISTS tr_projectevent_order ON projectevent")
        op.execute("DROP FUNCTION IF EXISTS lw_projectevent_order()")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_column("lease_until")
        batch_op.drop_column("worker")
