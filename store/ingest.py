"""Ingest: a zip or a folder of photos and videos (or one video) into a project, all or nothing.

Videos become their sampled frames (:mod:`store.video_ingest`); a refused video is one skip.

Every entry gets exactly one outcome: added, duplicate (same content as an image already in the
project or earlier in this source) or skipped with a reason. A bad *file* is a skip; a bad
*source* (unreadable zip, zip bomb, over the total size or file count) is an :class:`IngestError`,
and then nothing of this run remains: the transaction is rolled back and the files this run wrote
are deleted. Entry names are only ever stored as ``file_name`` strings; stored files are named by
project id and content hash, so no name in an archive can make us write anywhere (see
:mod:`store.imagefiles`). Entries are read one at a time, in chunks, with our own byte counts:
header sizes are used to refuse early, never trusted to bound the work.
"""

from __future__ import annotations

import contextlib
import hashlib
import lzma
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from store.imagefiles import ImageRejected, decode_image, image_relpath, write_image_file
from store.ingest_sources import (
    Entry,
    IngestError,
    IngestLimits,
    check_bomb,
    open_source,
    unique_name,
)
from store.models import Image, Project
from store.projects import get_project_by_name
from store.video_ingest import AddedVideo, add_video, find_video_by_sha
from store.videofiles import sniff_video

_CHUNK = 1 << 20
_FLUSH_EVERY = 500
# What a damaged entry raises while it is read: the entry is skipped, the run goes on.
_READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    NotImplementedError,
    RuntimeError,
    OSError,
)


@dataclass
class IngestReport:
    project_id: int
    project: str
    added: list[tuple[str, int]] = field(default_factory=list)  # (file_name, image_id)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (name, file_name it repeats)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    videos: list[AddedVideo] = field(default_factory=list)  # their frames are not in ``added``
    bytes: int = 0  # uncompressed bytes read from the source
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "project": self.project,
            "added": [{"file_name": n, "image_id": i} for n, i in self.added],
            "duplicates": [{"name": n, "of": o} for n, o in self.duplicates],
            "skipped": [{"name": n, "reason": r} for n, r in self.skipped],
            "videos": [v.to_dict() for v in self.videos],
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
        }


ProgressFn = Callable[[int, int | None], None]


def ingest(
    session: Session,
    *,
    home: Path,
    project_name: str,
    source: Path,
    limits: IngestLimits = IngestLimits(),  # noqa: B008  (frozen, so sharing the default is safe)
    progress: ProgressFn | None = None,
    before_commit: Callable[[Session, IngestReport], None] | None = None,
    sample_fps: float | None = None,
) -> IngestReport:
    """Add the images and videos in ``source`` (a .zip, a folder, recursive, or one video file) to
    project ``project_name``.

    A video's frames are sampled at ``sample_fps`` (None: every frame) and stored as images naming
    their video, frame index and timestamp; a damaged video is skipped whole (see
    :mod:`store.video_ingest`).

    Creates the project when it does not exist. Commits once, at the end, on ``session`` (pass a
    session with no pending work of its own); on any failure, including Ctrl-C, it rolls back and
    deletes the files it wrote, then re-raises. SQLite's write lock is held from the first image
    until that commit. ``before_commit`` runs just before it, in the same transaction (the
    operations layer records the change's event there).

    Raises:
        ValueError: an empty project name.
        IngestError: the source is missing, unreadable, or breaks a limit as a whole.
    """
    started = time.monotonic()
    name = project_name.strip()
    if not name:
        raise ValueError(f"project_name must be a non-empty string, got {project_name!r}")
    if sample_fps is not None and not sample_fps > 0:
        raise ValueError(f"sample_fps must be a positive number of frames per second, got {sample_fps!r}")
    home = Path(home).absolute()
    written: list[Path] = []
    try:
        with open_source(Path(source), limits) as (entries, total, archive_size):
            # Not get_or_create_project: it commits, and this run must stay one transaction.
            project = get_project_by_name(session, name=name)
            if project is None:
                project = Project(name=name)
                session.add(project)
                session.flush()
            run = _Run(session, home, project, limits, archive_size, written, sample_fps)
            for done, entry in enumerate(entries, 1):
                run.take(entry)
                if progress is not None:
                    progress(done, total)
            run.flush()
            if before_commit is not None:
                before_commit(session, run.report)
        session.commit()
    except BaseException:
        _undo(session, home, written)
        raise
    run.report.seconds = time.monotonic() - started
    return run.report


class _Run:
    """The state of one ingest: what the project holds, what this run added, what it wrote."""

    def __init__(
        self,
        session: Session,
        home: Path,
        project: Project,
        limits: IngestLimits,
        archive_size: int | None,
        written: list[Path],
        sample_fps: float | None = None,
    ) -> None:
        if project.id is None:
            raise ValueError(f"project {project.name!r} must be flushed (have an id) before ingest")
        self.session, self.home, self.project_id, self.limits = session, home, project.id, limits
        self.archive_size, self.written, self.sample_fps = archive_size, written, sample_fps
        self.report = IngestReport(project_id=project.id, project=project.name)
        rows = session.exec(select(Image.sha256, Image.file_name).where(Image.project_id == project.id))
        self.by_sha: dict[str, str] = {}
        self.names: set[str] = set()
        for sha, file_name in rows:
            self.by_sha[sha] = file_name
            self.names.add(file_name)
        self.unflushed = 0
        self.video_shas: dict[str, str] = {}  # videos added by this run: sha -> file name

    def take(self, entry: Entry) -> None:
        if entry.skip is not None:
            self.report.skipped.append((entry.name, entry.skip))
            return
        try:
            data = self.read(entry)
            source_sha = hashlib.sha256(data).hexdigest()
            if sniff_video(data[:16]) is not None:
                self.take_video(entry.name, data, source_sha)
                return
            if source_sha in self.by_sha:  # cheap: no decode for a byte-identical repeat
                self.report.duplicates.append((entry.name, self.by_sha[source_sha]))
                return
            image = decode_image(data, max_pixels=self.limits.max_pixels)
        except ImageRejected as rejected:
            self.report.skipped.append((entry.name, rejected.reason))
            return
        if image.sha256 in self.by_sha:
            self.report.duplicates.append((entry.name, self.by_sha[image.sha256]))
            return
        file_name = unique_name(entry.name, self.names)
        relpath = image_relpath(project_id=self.project_id, sha256=image.sha256, ext=image.ext)
        self.written.extend(write_image_file(self.home, relpath, image.data))
        self.session.add(
            Image(
                project_id=self.project_id,
                file_name=file_name,
                path=relpath,
                sha256=image.sha256,
                width=image.width,
                height=image.height,
            )
        )
        self.names.add(file_name)
        self.by_sha[image.sha256] = self.by_sha[source_sha] = file_name
        self.unflushed += 1
        if self.unflushed >= _FLUSH_EVERY:
            self.flush()

    def take_video(self, name: str, data: bytes, sha: str) -> None:
        """Add one video whole, or skip it whole with the reason (ImageRejected from add_video)."""
        self.flush()  # pending images first (a query autoflushes), so ``added`` records them
        same = find_video_by_sha(self.session, project_id=self.project_id, sha256=sha)
        if same is not None or sha in self.video_shas:
            self.report.duplicates.append((name, same.file_name if same else self.video_shas[sha]))
            return
        added = add_video(
            self.session,
            home=self.home,
            project_id=self.project_id,
            file_name=name,
            data=data,
            limits=self.limits,
            sample_fps=self.sample_fps,
            taken_names=self.names,
            written=self.written,
        )
        self.video_shas[sha] = added.file_name
        self.report.videos.append(added)

    def flush(self) -> None:
        """Insert pending rows and record their ids; then the session holds no references to them."""
        new = [row for row in self.session.new if isinstance(row, Image)]
        self.session.flush()
        self.unflushed = 0
        self.report.added.extend((row.file_name, row.id) for row in sorted(new, key=lambda r: r.id or 0))

    def read(self, entry: Entry) -> bytes:
        """Read one entry in chunks, enforcing the per-file, total and ratio caps as bytes arrive."""
        assert entry.open is not None
        lim, chunks, size = self.limits, [], 0
        try:
            with entry.open() as stream:
                while chunk := stream.read(_CHUNK):
                    size += len(chunk)
                    self.report.bytes += len(chunk)
                    if self.report.bytes > lim.max_total_bytes:
                        raise IngestError(
                            f"source is larger than max_total_bytes={lim.max_total_bytes:,} "
                            f"(passed it at {entry.name!r}); raise the limit if this is intended"
                        )
                    if size > lim.max_file_bytes:
                        raise ImageRejected(f"file too large: over max_file_bytes={lim.max_file_bytes:,}")
                    self._check_ratio(entry, size)
                    chunks.append(chunk)
        except _READ_ERRORS as exc:
            raise ImageRejected(f"unreadable entry: {exc}") from None
        return b"".join(chunks)

    def _check_ratio(self, entry: Entry, size: int) -> None:
        # A backstop: zipfile stops at the declared size, which _open_source has checked already.
        cap = self.limits.max_ratio
        if entry.compressed is not None:
            check_bomb(f"entry {entry.name!r}", size, entry.compressed, cap)
        if self.archive_size is not None:
            check_bomb("the archive", self.report.bytes, self.archive_size, cap)


def _undo(session: Session, home: Path, written: list[Path]) -> None:
    """Roll back, then delete what this run wrote, keeping any file a committed row points to."""
    try:
        session.rollback()
        rels = [p.relative_to(home).as_posix() for p in written if not p.is_dir()]
        kept: set[str] = set()
        for i in range(0, len(rels), 500):
            kept.update(session.exec(select(Image.path).where(col(Image.path).in_(rels[i : i + 500]))))
        session.rollback()
    except Exception:
        return  # the database cannot say which files are referenced: delete none of them
    for path in reversed(written):
        if path.is_dir():
            with contextlib.suppress(OSError):  # not empty: something else lives there now
                path.rmdir()
        elif path.relative_to(home).as_posix() not in kept:
            path.unlink(missing_ok=True)
