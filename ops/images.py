"""Images: ingest a zip or folder (creating the project when asked), list, read, locate the file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlmodel import Session

from ops import names
from ops.caller import Caller
from ops.errors import Invalid, NotFound
from ops.filters import category_of, image_of
from ops.policy import authorize, authorize_global
from ops.unit import Env, read
from store.db import new_session
from store.events import add_event
from store.images import list_images
from store.ingest import IngestError, IngestReport
from store.ingest import ingest as run_ingest
from store.models import AnnotationStatus, Image, Project
from store.projects import get_project_by_name


def ingest(
    env: Env,
    caller: Caller | None,
    *,
    source: Path,
    project_id: int | None = None,
    project_name: str | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    sample_fps: float | None = None,
) -> IngestReport:
    """Add the images in ``source`` to a project given by id, or by name (created when new: that
    needs an instance admin). All or nothing: a refused source keeps nothing and says why. Videos
    are sampled at ``sample_fps`` frames per second (None: every frame)."""
    with new_session(env.engine) as session:
        if project_id is None:
            name = names.project_name(project_name)
            existing = get_project_by_name(session, name=name)
            project_id = existing.id if existing is not None else None
        if project_id is None:
            who = authorize_global(caller, "project.create")
        else:
            who = authorize(session, caller, "image.ingest", project_id).caller
            name = session.get(Project, project_id).name  # type: ignore[union-attr]
        created = project_id is None

        def record(s: Session, report: IngestReport) -> None:
            if created:
                add_event(
                    s,
                    project_id=report.project_id,
                    kind="project",
                    action="created",
                    ids=[report.project_id],
                    actor=who.username,
                    via=who.via,
                )
            ids = [i for _, i in report.added]
            add_event(
                s,
                project_id=report.project_id,
                kind="image",
                action="created",
                ids=ids,
                actor=who.username,
                via=who.via,
            )

        try:
            return run_ingest(
                session,
                home=env.home,
                project_name=name,
                source=source,
                progress=progress,
                before_commit=record,
                sample_fps=sample_fps,
            )
        except IngestError as exc:
            raise Invalid(f"ingest refused, nothing was added: {exc}") from None
        except ValueError as exc:
            raise Invalid(str(exc)) from None


def list_(
    env: Env,
    caller: Caller | None,
    project_id: int,
    *,
    class_name: str | None = None,
    category_id: int | None = None,
    status: AnnotationStatus | str | None = None,
    without_annotations: bool = False,
    min_score: float | None = None,
    max_score: float | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[Image], int]:
    """A page of images in id order and the total count; the annotation filters combine (AND).

    An unknown class selects nothing with ``without_annotations`` (every image lacks it), else
    it is NotFound.
    """
    with read(env, caller, "image.read", project_id) as unit:
        if class_name is not None:
            try:
                category_id = category_of(unit.session, project_id, class_name).id
            except NotFound:
                if not without_annotations:
                    raise
                category_id = -1
        try:
            return list_images(
                unit.session,
                project_id=project_id,
                category_id=category_id,
                status=AnnotationStatus(status).value if status is not None else None,
                without_annotations=without_annotations,
                min_score=min_score,
                max_score=max_score,
                offset=offset,
                limit=limit,
            )
        except ValueError as exc:
            raise Invalid(str(exc)) from None


def get(env: Env, caller: Caller | None, project_id: int, ref: int | str) -> Image:
    """An image of the project by id or file name."""
    with read(env, caller, "image.read", project_id) as unit:
        return image_of(unit.session, project_id, ref)


def file_path(env: Env, caller: Caller | None, project_id: int, ref: int | str) -> tuple[Image, Path]:
    """The image and its stored original (EXIF orientation already applied at ingest)."""
    image = get(env, caller, project_id, ref)
    path = env.home / image.path
    if not path.is_file():
        raise NotFound(f"the file of image {image.id} is missing (expected at {image.path})")
    return image, path
