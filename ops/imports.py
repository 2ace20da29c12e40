"""Importing annotations into a project as one undoable change: COCO (images, and the frames
of videos as plain images), COCO with video fields, or MOTChallenge text.

A COCO import creates the project when it is new (its images can come with it). A video import
(``coco-video``, ``mot``) goes onto videos the project already holds, so its project must exist;
it is all or nothing (:mod:`store.video_import`): any problem refuses the file, nothing written.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from sqlmodel import Session

from ops import names
from ops.caller import Caller
from ops.errors import Invalid, NotFound
from ops.policy import authorize, authorize_global
from ops.unit import Env
from store.db import new_session
from store.events import add_event
from store.models import Project
from store.projects import create_project, get_project_by_name

if TYPE_CHECKING:  # the importers pull numpy, OpenCV and pycocotools: imported when one runs
    from store.coco_import import ImportReport
    from store.video_import import VideoImportReport


LEAVE_OUT_NAME = "-"  # a class map's name for "leave these MOT lines out"


class ImportFormat(StrEnum):
    coco = "coco"
    coco_video = "coco-video"
    mot = "mot"


def import_annotations(
    env: Env,
    caller: Caller | None,
    *,
    path: Path,
    project_name: str | None = None,
    project_id: int | None = None,
    fmt: ImportFormat | str = ImportFormat.coco,
    images_dir: Path | None = None,
    status: str = "accepted",
    video: str | None = None,
    class_name: str | None = None,
    class_map: dict[int, str | None] | None = None,
) -> ImportReport | VideoImportReport:
    """Import the file at ``path`` into the project named (or with id) given; accepted or rejected
    annotations need a reviewer.

    Args:
        fmt: ``coco``, ``coco-video`` or ``mot``.
        images_dir: COCO only: where the images the project lacks are.
        video: MOT only: the project's video the file is about (default: the file's stem).
        class_name: MOT only: the class of every box (of those whose class number is not mapped).
        class_map: MOT only: class numbers (column 8 of ``gt.txt``) to class names; None (or
            ``-``) leaves that class's lines out.

    Raises:
        Invalid: bad input, or a refused file (the reasons named); NotFound: no such project.
    """
    chosen = _format(fmt)
    if (project_name is None) == (project_id is None):
        raise Invalid("name the project by name or by id, exactly one of them")
    if chosen is not ImportFormat.mot and (video or class_name or class_map):
        raise Invalid(f"video, class name and class map are for MOT files, not {chosen.value}")
    if chosen is not ImportFormat.coco and images_dir is not None:
        raise Invalid(
            f"an images folder is for COCO image files; {chosen.value} imports onto ingested videos"
        )
    if chosen is ImportFormat.mot:
        class_name = names.class_name(class_name) if class_name else None
        class_map = {
            _class_number(k): None if v in (None, LEAVE_OUT_NAME) else names.class_name(v)
            for k, v in (class_map or {}).items()
        } or None
    else:
        _check_class_names(path)
    with new_session(env.engine) as session:
        project = _project(session, caller, project_name, project_id, create=chosen is ImportFormat.coco)
        access = authorize(session, caller, "annotation.import", project.id or 0)
        if status != "proposed":
            access.require("annotation.review", f"importing annotations as {status}")
        try:
            report = _run(session, chosen, project.id or 0, path, access.caller.username, env.home,
                          images_dir, status, video, class_name, class_map)  # fmt: skip
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        add_event(
            session,
            project_id=project.id or 0,
            kind="annotation",
            action="created",
            ids=[],
            actor=access.caller.username,
            via=access.caller.via,
            data={"imported": report.imported, **_tracks(report)},
        )
        session.commit()
        return report


def _tracks(report: ImportReport | VideoImportReport) -> dict[str, list[int]]:
    """The tracks a video import created, for the event (the UI refreshes its track lists)."""
    tracks = getattr(report, "tracks", None)  # a VideoImportReport's
    return {"tracks": sorted(tracks.values())} if tracks else {}


def _run(
    session: Session,
    fmt: ImportFormat,
    project_id: int,
    path: Path,
    actor: str,
    home: Path,
    images_dir: Path | None,
    status: str,
    video: str | None,
    class_name: str | None,
    class_map: dict[int, str | None] | None,
) -> ImportReport | VideoImportReport:
    """The store's importer for ``fmt`` (video ones imported lazily, with their dependencies)."""
    if fmt is ImportFormat.coco:
        from store.coco_import import import_coco

        return import_coco(session, home=home, project_id=project_id, coco_path=path,
                           images_dir=images_dir, status=status, actor=actor)  # fmt: skip
    if fmt is ImportFormat.coco_video:
        from store.coco_video_import import import_coco_video

        return import_coco_video(session, project_id=project_id, coco_path=path, status=status, actor=actor)
    from store.mot_import import import_mot

    return import_mot(session, project_id=project_id, mot_path=path, video=video, class_name=class_name,
                      class_map=class_map, status=status, actor=actor)  # fmt: skip


def _format(fmt: ImportFormat | str) -> ImportFormat:
    try:
        return ImportFormat(fmt)
    except ValueError:
        raise Invalid(
            f"import format must be one of {[f.value for f in ImportFormat]}, got {fmt!r}"
        ) from None


def _class_number(key: object) -> int:
    """A MOT class number of a class map (JSON keys arrive as strings)."""
    try:
        return int(str(key))
    except ValueError:
        raise Invalid(f"a class map maps MOT class numbers (whole numbers) to names, got {key!r}") from None


def parse_class_map(pairs: list[str] | None) -> dict[int, str | None] | None:
    """``["1=pedestrian", "2=person on vehicle", "8=-"]`` (the CLI's ``--map``, the API's ``map``)
    -> ``{1: "pedestrian", 2: "person on vehicle", 8: None}`` (``-``: leave class 8 out); None for none."""
    out: dict[int, str | None] = {}
    for pair in pairs or []:
        number, sep, name = pair.partition("=")
        if not sep or not name.strip():
            raise Invalid(f"a class map entry is NUMBER=NAME or NUMBER=- (e.g. 1=pedestrian), got {pair!r}")
        out[_class_number(number.strip())] = None if name.strip() == LEAVE_OUT_NAME else name.strip()
    return out or None


def _project(
    session: Session, caller: Caller | None, project_name: str | None, project_id: int | None, *, create: bool
) -> Project:
    """The project named, created when new and ``create`` (a COCO import may bring its images)."""
    if project_id is not None:
        project = session.get(Project, project_id)
        if project is None:
            raise NotFound(f"no project {project_id}")
        return project
    name = names.project_name(project_name)
    project = get_project_by_name(session, name=name)
    if project is not None:
        return project
    if not create:
        raise NotFound(f"no project {name!r}: a video import goes onto a project holding the ingested video")
    who = authorize_global(caller, "project.create")
    project = create_project(session, name=name)
    add_event(
        session,
        project_id=project.id or 0,
        kind="project",
        action="created",
        ids=[project.id or 0],
        actor=who.username,
        via=who.via,
    )
    session.commit()
    return project


def _check_class_names(coco_path: Path) -> None:
    """Refuse a COCO file whose category names break the name rules (:mod:`ops.names`) before
    anything is written; the store reads the file again to import it."""
    from store.coco_import import read_coco

    try:
        coco = read_coco(coco_path)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    for category in coco.get("categories") or []:
        if isinstance(category, dict) and "name" in category:
            try:
                names.class_name(category["name"])
            except Invalid as exc:
                raise Invalid(f"category {category.get('id')!r} of {coco_path.name}: {exc}") from None
