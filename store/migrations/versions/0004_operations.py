"""Operations layer: who changed what through which surface, whose conversation, and the event outbox.

``changebatch.via`` / ``agent_run_id`` record the means of a change (api, ui, agent, cli, job);
``agentrun.owner`` is the user a conversation belongs to; ``projectevent`` is the outbox every
change writes in its own transaction, which live streams in every process follow.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 09:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("changebatch", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("via", sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("agent_run_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("agentrun", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("owner", sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default="")
        )
        batch_op.create_index(batch_op.f("ix_agentrun_owner"), ["owner"], unique=False)
    op.create_table(
        "projectevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("ids", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("via", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("projectevent", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_projectevent_project_id"), ["project_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("projectevent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_projectevent_project_id"))
    op.drop_table("projectevent")
    with op.batch_alter_table("agentrun", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agentrun_owner"))
        batch_op.drop_column("owner")
    with op.batch_alter_table("changebatch", schema=None) as batch_op:
        batch_op.drop_column("agent_run_id")
        batch_op.drop_column("via")
