"""Projects and their members: thin adapters over :mod:`ops.projects`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel

from ops import projects
from server.deps import CallerDep, EnvDep
from store.models import Role

router = APIRouter(prefix="/projects", tags=["projects"])


class ProjectCreate(BaseModel):
    name: str
    description: str = ""


class ProjectRename(BaseModel):
    name: str


class MemberSet(BaseModel):
    role: Role


@router.get("")
def list_all(env: EnvDep, caller: CallerDep) -> list[dict[str, Any]]:
    """The projects you have a role in (all of them for instance admins)."""
    return [p.to_dict() for p in projects.list_projects(env, caller)]


@router.post("", status_code=status.HTTP_201_CREATED)
def create(body: ProjectCreate, env: EnvDep, caller: CallerDep) -> dict[str, Any]:
    """Create a project (instance admins); a name has no '/' or control characters."""
    return projects.create_project(env, caller, name=body.name, description=body.description).to_dict()


@router.get("/{project_id}")
def get(project_id: int, env: EnvDep, caller: CallerDep) -> dict[str, Any]:
    return projects.get_project(env, caller, project_id).to_dict()


@router.patch("/{project_id}")
def rename(project_id: int, body: ProjectRename, env: EnvDep, caller: CallerDep) -> dict[str, Any]:
    """Rename the project (its admins)."""
    return projects.rename_project(env, caller, project_id, name=body.name).to_dict()


@router.delete("/{project_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete(project_id: int, env: EnvDep, caller: CallerDep) -> Response:
    """Delete the project and every row in it (stored image files stay in the data home)."""
    projects.delete_project(env, caller, project_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{project_id}/members")
def members(project_id: int, env: EnvDep, caller: CallerDep) -> list[dict[str, Any]]:
    return list(projects.list_members(env, caller, project_id))


@router.put("/{project_id}/members/{username}")
def set_member(
    project_id: int, username: str, body: MemberSet, env: EnvDep, caller: CallerDep
) -> dict[str, Any]:
    return projects.set_member(env, caller, project_id, username=username, role=body.role)


@router.delete("/{project_id}/members/{username}", status_code=status.HTTP_204_NO_CONTENT)
def remove_member(project_id: int, username: str, env: EnvDep, caller: CallerDep) -> Response:
    projects.remove_member(env, caller, project_id, username=username)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
