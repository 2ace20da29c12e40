"""SQLModel tables: the one schema every layer reads and writes.

Geometry is stored the COCO way so export is a copy, not a conversion: ``bbox`` is
``[x, y, w, h]`` in pixels and ``mask`` is a COCO RLE dict (``{"size": [h, w], "counts": str}``)
with compressed counts. JSON columns hold small structured values only; never pixels.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Now, timezone-aware in UTC (sqlmodel's UTCDateTime columns refuse naive datetimes)."""
    return datetime.now(UTC)


UNANNOTATED = "n_proposed + n_accepted + n_rejected = 0"
# The images having an annotation of a status (the "by status" list), one partial index each.
HAS_STATUS = {s: f"n_{s} > 0" for s in ("proposed", "accepted", "rejected")}


class AnnotationStatus(StrEnum):
    proposed = "proposed"
    accepted = "accepted"
    rejected = "rejected"


class JobState(StrEnum):
    queued = "queued"
    running = "running"
    cancelled = "cancelled"
    failed = "failed"
    done = "done"


class Role(StrEnum):
    admin = "admin"
    reviewer = "reviewer"
    annotator = "annotator"
    viewer = "viewer"


class Project(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    description: str = ""
    created_at: datetime = Field(default_factory=utcnow)


class Image(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("project_id", "sha256", name="uq_image_project_sha"),
        UniqueConstraint("project_id", "file_name", name="uq_image_project_name"),
        # The "not annotated yet" list: a partial index holding only those images. Queries must spell
        # the condition exactly like this (literal 0) for SQLite to use it; see store.images.
        Index(
            "ix_image_unannotated",
            "project_id",
            "id",
            sqlite_where=text(UNANNOTATED),
            postgresql_where=text(UNANNOTATED),
        ),
        Index("ix_image_video_frame", "video_id", "frame_index"),
        *(
            Index(f"ix_image_has_{s}", "project_id", "id", sqlite_where=text(w), postgresql_where=text(w))
            for s, w in HAS_STATUS.items()
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    file_name: str
    path: str  # relative to the data home; the original bytes, EXIF orientation applied
    sha256: str = Field(index=True)
    width: int
    height: int
    created_at: datetime = Field(default_factory=utcnow)
    # Annotations on this image per status, kept by SQLite triggers on annotation (migration 0002)
    # whoever writes: the "not annotated yet" and "has proposals" lists filter on them, no joins.
    n_proposed: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    n_accepted: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    n_rejected: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # A frame sampled from a video (migration 0006): which video, its index among the video's
    # decoded frames (0-based) and its presentation time. None for a plain image. No foreign key,
    # so SQLite adds the columns without rebuilding the table (see the migration).
    video_id: int | None = None
    frame_index: int | None = None
    timestamp_s: float | None = None


class Video(SQLModel, table=True):
    """An ingested clip; its sampled frames are ``Image`` rows naming it (``Image.video_id``).

    ``fps``, ``frame_count`` and ``duration_s`` describe the decoded source; ``sample_fps`` is the
    rate frames were kept at (None: every frame).
    """

    __table_args__ = (
        UniqueConstraint("project_id", "sha256", name="uq_video_project_sha"),
        UniqueConstraint("project_id", "file_name", name="uq_video_project_name"),
    )
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    file_name: str
    sha256: str  # of the source file's bytes: the same clip twice is a duplicate
    fps: float
    sample_fps: float | None = None
    frame_count: int
    duration_s: float
    width: int
    height: int
    created_at: datetime = Field(default_factory=utcnow)


class Track(SQLModel, table=True):
    """One object through a video. Its annotations are the truth about it (frames, class): the
    row is its identity, so undoing a merge or split only has to move annotations back."""

    __table_args__ = ({"sqlite_autoincrement": True},)
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    video_id: int = Field(foreign_key="video.id", index=True)
    # The class it was created or last renamed with; no foreign key, so deleting an emptied class
    # is not blocked by the track that once had it (its annotations say its class now).
    category_id: int
    name: str = ""
    created_at: datetime = Field(default_factory=utcnow)


class Category(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_category_project_name"),)
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    name: str
    supercategory: str = ""
    color: str = ""


class Annotation(SQLModel, table=True):
    # Indexes sized for 100k images / 1M annotations: the class filter and per-class counts read
    # (project, category, image) alone; status counts read (project, status, category); per-image
    # lookups and the EXISTS probes of the image list use (image, category). AUTOINCREMENT keeps
    # ids of deleted rows from being reused, so the event log and undo can always recreate them.
    __table_args__ = (
        Index("ix_annotation_project_category_image", "project_id", "category_id", "image_id"),
        Index("ix_annotation_project_status_category", "project_id", "status", "category_id"),
        Index("ix_annotation_image_category", "image_id", "category_id"),
        {"sqlite_autoincrement": True},
    )
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id")
    image_id: int = Field(foreign_key="image.id")
    category_id: int = Field(foreign_key="category.id")
    bbox: list[float] = Field(sa_column=Column(JSON, nullable=False))
    mask: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # The COCO segmentation derived from ``mask`` when it is written (polygons where they carry the
    # mask faithfully, else RLE) and its IoU against the mask: export copies it instead of
    # re-tracing a million masks, and the fidelity report is a query.
    segmentation: list[list[float]] | dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON, nullable=True)
    )
    fidelity: float | None = None
    area: float = 0.0
    score: float | None = None
    status: AnnotationStatus = Field(default=AnnotationStatus.proposed)
    # Provenance: which tool and model made it, from what prompt, at what threshold, in which run.
    tool: str = ""
    model: str = ""
    prompt: str = ""
    threshold: float | None = None
    job_id: int | None = Field(default=None, index=True)
    agent_run_id: int | None = None
    author: str = ""
    version: int = 1  # optimistic concurrency: a write names the version it read
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # The track (one object through a video) this annotation belongs to; None outside videos.
    track_id: int | None = Field(default=None, index=True)


class ChangeBatch(SQLModel, table=True):
    """One user-visible change (a bulk delete is one batch): the unit of undo and redo."""

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    actor: str = ""
    description: str = ""
    kind: str = "change"  # change | undo | redo
    reverts_id: int | None = None  # for undo/redo batches: the batch they act on
    undone: bool = False
    # Through what the actor made the change: api | ui | agent | cli | job, and the agent run if any.
    via: str = Field(default="", sa_column_kwargs={"server_default": ""})
    agent_run_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow)


class AnnotationEvent(SQLModel, table=True):
    """Append-only history row: never updated, never deleted."""

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    batch_id: int = Field(foreign_key="changebatch.id", index=True)
    annotation_id: int = Field(index=True)
    action: str  # create | update | delete
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    actor: str = ""
    created_at: datetime = Field(default_factory=utcnow)


class Job(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    kind: str
    state: JobState = Field(default=JobState.queued, index=True)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    cursor: int = 0  # items fully processed; a restart resumes here
    total: int = 0
    error: str = ""
    cancel_requested: bool = False
    # Who runs it now ("host:pid:token") and until when that claim holds; the worker's heartbeat
    # renews it, and a running job whose lease ran out is claimed by another worker (migration 0005).
    worker: str = Field(default="", sa_column_kwargs={"server_default": ""})
    lease_until: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class AgentRun(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    kind: str = "command"  # command | review
    # The user whose conversation this is: only they may read, continue or confirm in it.
    owner: str = Field(default="", index=True, sa_column_kwargs={"server_default": ""})
    model: str = ""
    title: str = ""
    created_at: datetime = Field(default_factory=utcnow)


class Message(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="agentrun.id", index=True)
    role: str  # system | user | assistant | tool
    content: str = ""
    tool_name: str = ""
    tool_calls: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)


class AuditFinding(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("project_id", "fingerprint", name="uq_finding_project_fingerprint"),)
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    image_id: int | None = Field(default=None, index=True)
    annotation_id: int | None = Field(default=None, index=True)
    kind: str = Field(index=True)
    severity: float = 0.5  # 0..1, ranks the queue together with confidence
    confidence: float = 0.5
    message: str = ""
    bbox: list[float] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    evidence: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    fingerprint: str  # stable across runs: dedupes re-found findings (unique per project)
    status: str = Field(default="open", index=True)  # open | closed
    resolution: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    closed_at: datetime | None = None


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(index=True, unique=True)
    display_name: str = ""
    password_hash: str = ""
    is_admin: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class ApiToken(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    name: str = ""
    token_hash: str = Field(index=True, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class Membership(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("user_id", "project_id", name="uq_membership"),)
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    role: Role


class ClassCount(SQLModel, table=True):
    """Annotations per (class, status): per-class counts read ~45 rows instead of 1M.

    Derived data kept by SQLite triggers on ``annotation`` (migration 0002); never written by code.
    """

    project_id: int = Field(index=True)
    category_id: int = Field(primary_key=True)
    status: str = Field(primary_key=True)
    n: int = 0


class ImageClass(SQLModel, table=True):
    """Which images hold a class (with a status), and how many such annotations: the class filter of
    the image list pages through this (one row per image, class and status) instead of 1M rows.

    Derived data kept by SQLite triggers on ``annotation`` (migration 0002); never written by code.
    """

    __table_args__ = (
        Index("ix_imageclass_project_category_image", "project_id", "category_id", "image_id", "status"),
    )
    image_id: int = Field(primary_key=True)
    category_id: int = Field(primary_key=True)
    status: str = Field(primary_key=True)
    project_id: int
    n: int = 0


class ProjectEvent(SQLModel, table=True):
    """A change to a project, written in the same transaction as the change (an outbox).

    Every process that shares the database sees every change in commit order by reading rows past
    the last id it saw: the server's live streams follow this table, so an edit made by the CLI, a
    worker or another server process reaches every open browser. No foreign key: the event of a
    deleted project outlives it. Old rows are pruned (``store.events.prune``).
    """

    __table_args__ = ({"sqlite_autoincrement": True},)
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(index=True)
    kind: str  # annotation | category | image | job | finding | project | member
    action: str = ""  # created | updated | deleted | undo | redo | progress | ...
    ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    version: int | None = None
    actor: str = ""
    via: str = ""
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
