"""Video: a video and the frames sampled from it, and tracks (one object through time).

``video`` holds one row per ingested clip; a sampled frame is an ordinary ``image`` row that names
its video, frame index and timestamp; ``track`` is one object through a video, and an
``annotation`` may belong to one. The new columns on ``image`` and ``annotation`` are plain
indexed integers without a foreign key so SQLite adds them with ``ALTER TABLE ADD COLUMN``: a
table rebuild would drop the summary triggers on ``annotation`` (migration 0002) and the partial
index on ``image`` (0003). Columns are dropped the same way (SQLite >= 3.35, PostgreSQL).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 09:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "video",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("file_name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("fps", sa.Float(), nullable=False),
        sa.Column("sample_fps", sa.Float(), nullable=True),
        sa.Column("frame_count", sa.Integer(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "sha256", name="uq_video_project_sha"),
        sa.UniqueConstraint("project_id", "file_name", name="uq_video_project_name"),
    )
    op.create_index(op.f("ix_video_project_id"), "video", ["project_id"], unique=False)
    op.create_table(
        "track",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("video_id", sa.Integer(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"]),
        sa.ForeignKeyConstraint(["video_id"], ["video.id"]),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_track_project_id"), "track", ["project_id"], unique=False)
    op.create_index(op.f("ix_track_video_id"), "track", ["video_id"], unique=False)
    op.add_column("image", sa.Column("video_id", sa.Integer(), nullable=True))
    op.add_column("image", sa.Column("frame_index", sa.Integer(), nullable=True))
    op.add_column("image", sa.Column("timestamp_s", sa.Float(), nullable=True))
    op.create_index("ix_image_video_frame", "image", ["video_id", "frame_index"], unique=False)
    op.add_column("annotation", sa.Column("track_id", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_annotation_track_id"), "annotation", ["track_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_annotation_track_id"), table_name="annotation")
    op.execute("ALTER TABLE annotation DROP COLUMN track_id")
    op.drop_index("ix_image_video_frame", table_name="image")
    for column in ("timestamp_s", "frame_index", "video_id"):
        op.execute(f"ALTER TABLE image DROP COLUMN {column}")
    op.drop_index(op.f("ix_track_video_id"), table_name="track")
    op.drop_index(op.f("ix_track_project_id"), table_name="track")
    op.drop_table("track")
    op.drop_index(op.f("ix_video_project_id"), table_name="video")
    op.drop_table("video")
