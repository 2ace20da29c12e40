"""Partial index of the images with no annotations: the "to do" list reads ~10k entries, not 100k rows.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 06:21:04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("image", schema=None) as batch_op:
        batch_op.create_index(
            "ix_image_unannotated",
            ["project_id", "id"],
            unique=False,
            sqlite_where=sa.text("n_proposed + n_accepted + n_rejected = 0"),
            postgresql_where=sa.text("n_proposed + n_accepted + n_rejected = 0"),
        )


def downgrade() -> None:
    with op.batch_alter_table("image", schema=None) as batch_op:
        batch_op.drop_index("ix_image_unannotated")
