"""Projects and their members."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from server.deps import (
    BusDep,
    CurrentUser,
    InstanceAdmin,
    ProjectAdmin,
    SessionDep,
    Viewer,
    bad_input,
    not_found,
)
from server.events import Event
from store.images import class_status_counts, image_count
from store.models import Membership, Project, Role, User
from store.projects import create_project, delete_project, get_project, list_projects
from store.users import get_user_by_name, remove_membership, set_membership

router = APIRouter(prefix="/projects", tags=["projects"])


class ProjectCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""


class MemberSet(BaseModel):
    role: Role


def project_public(session: Session, project: Project, role: Role | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": project.id,
        "name": project.name,
        "description": project.description,
        "created_at": project.created_at,
        "images": image_count(session, project_id=project.id),  # type: ignore[arg-type]
    }
    if role is not None:
        data["role"] = role.value
    return data


@router.get("")
def list_all(session: SessionDep, user: CurrentUser) -> list[dict[str, Any]]:
    """Projects the caller can see (all of them for instance admins)."""
    projects = list_projects(session)
    if not user.is_admin:
        mine = set(session.exec(select(Membership.project_id).where(Membership.user_id == user.user_id)))
        projects = [p for p in projects if p.id in mine]
    return [project_public(session, p, user.role_in(session, p.id)) for p in projects]  # type: ignore[arg-type]


@router.post("", status_code=status.HTTP_201_CREATED)
def create(body: ProjectCreate, session: SessionDep, user: InstanceAdmin) -> dict[str, Any]:
    with bad_input():
        project = create_project(session, name=body.name, description=body.description)
    return project_public(session, project, Role.admin)


@router.get("/{project_id}")
def get(access: Viewer, session: SessionDep) -> dict[str, Any]:
    project = get_project(session, project_id=access.project_id)
    assert project is not None  # RequireRole checked it
    data = project_public(session, project, access.role)
    data["classes"] = class_status_counts(session, project_id=access.project_id)
    return data


@router.delete("/{project_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete(access: ProjectAdmin, session: SessionDep, bus: BusDep) -> Response:
    """Delete the project and every row in it (stored image files stay in the data home)."""
    delete_project(session, project_id=access.project_id)
    bus.publish(Event(access.project_id, "project", "deleted", [access.project_id], actor=access.actor))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{project_id}/members")
def members(access: ProjectAdmin, session: SessionDep) -> list[dict[str, Any]]:
    rows = session.exec(
        select(User.username, User.display_name, Membership.role)
        .join(Membership, col(Membership.user_id) == col(User.id))
        .where(Membership.project_id == access.project_id)
        .order_by(col(User.username))
    )
    return [{"username": u, "display_name": d, "role": Role(r).value} for u, d, r in rows]


@router.put("/{project_id}/members/{username}")
def set_member(username: str, body: MemberSet, access: ProjectAdmin, session: SessionDep) -> dict[str, Any]:
    user = get_user_by_name(session, username=username)
    if user is None:
        raise not_found(f"user named {username!r}; create it with `labelwright users add`")
    set_membership(session, user_id=user.id, project_id=access.project_id, role=body.role)  # type: ignore[arg-type]
    return {"username": user.username, "role": body.role.value}


@router.delete("/{project_id}/members/{username}", status_code=status.HTTP_204_NO_CONTENT)
def remove_member(username: str, access: ProjectAdmin, session: SessionDep) -> Response:
    user = get_user_by_name(session, username=username)
    if user is None or not remove_membership(session, user_id=user.id, project_id=access.project_id):  # type: ignore[arg-type]
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{username!r} is not a member of this project")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
