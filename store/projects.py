"""Projects: create, find, list and delete (with everything in them)."""

from __future__ import annotations

from sqlalchemy import delete
from sqlmodel import Session, col, select

from store.errors import NameTaken
from store.models import (
    AgentRun,
    Annotation,
    AnnotationEvent,
    AuditFinding,
    Category,
    ChangeBatch,
    ClassCount,
    Image,
    ImageClass,
    Job,
    Membership,
    Message,
    Project,
    Track,
    Video,
)


def create_project(session: Session, *, name: str, description: str = "") -> Project:
    """Create a project; ``ValueError`` when the name is empty or already taken."""
    name = name.strip()
    if not name:
        raise ValueError("project name must be a non-empty string, got ''")
    if get_project_by_name(session, name=name) is not None:
        raise NameTaken(f"a project named {name!r} already exists; pick another name or open it")
    project = Project(name=name, description=description)
    session.add(project)
    session.flush()
    return project


def get_project(session: Session, *, project_id: int) -> Project | None:
    return session.get(Project, project_id)


def get_project_by_name(session: Session, *, name: str) -> Project | None:
    return session.exec(select(Project).where(Project.name == name.strip())).first()


def get_or_create_project(session: Session, *, name: str, description: str = "") -> Project:
    return get_project_by_name(session, name=name) or create_project(
        session, name=name, description=description
    )


def list_projects(session: Session) -> list[Project]:
    return list(session.exec(select(Project).order_by(col(Project.name))))


def delete_project(session: Session, *, project_id: int) -> bool:
    """Delete a project and every row that belongs to it; False when there is no such project.
    Flushes; the caller commits.

    Children go first because the foreign keys have no ON DELETE CASCADE (SQLite cannot add one
    without rebuilding the tables) and ``PRAGMA foreign_keys`` is on.
    """
    if session.get(Project, project_id) is None:
        return False
    runs = select(AgentRun.id).where(AgentRun.project_id == project_id)
    session.exec(delete(Message).where(col(Message.run_id).in_(runs)))
    tables = (
        AnnotationEvent,
        ChangeBatch,
        Annotation,
        ClassCount,
        ImageClass,
        AuditFinding,
        Job,
        AgentRun,
        Membership,
    )
    for table in tables:
        session.exec(delete(table).where(table.project_id == project_id))
    for table in (Track, Image, Video, Category):
        session.exec(delete(table).where(table.project_id == project_id))
    session.exec(delete(Project).where(Project.id == project_id))
    session.flush()
    return True
