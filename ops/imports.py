"""Importing annotations (COCO) into a project, created when new, as one undoable change."""

from __future__ import annotations

from pathlib import Path

from ops import names
from ops.caller import Caller
from ops.errors import Invalid
from ops.policy import authorize, authorize_global
from ops.unit import Env
from store.coco_import import ImportReport, import_coco
from store.db import new_session
from store.events import add_event
from store.projects import create_project, get_project_by_name


def import_annotations(
    env: Env,
    caller: Caller | None,
    *,
    project_name: str,
    coco_path: Path,
    images_dir: Path | None = None,
    status: str = "accepted",
) -> ImportReport:
    """Import a COCO file; accepted or rejected annotations need a reviewer."""
    name = names.project_name(project_name)
    with new_session(env.engine) as session:
        project = get_project_by_name(session, name=name)
        if project is None:
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
        access = authorize(session, caller, "annotation.import", project.id or 0)
        if status != "proposed":
            access.require("annotation.review", f"importing annotations as {status}")
        try:
            report = import_coco(
                session,
                home=env.home,
                project_id=project.id or 0,
                coco_path=coco_path,
                images_dir=images_dir,
                status=status,
                actor=access.caller.username,
            )
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
            data={"imported": report.imported},
        )
        session.commit()
        return report
