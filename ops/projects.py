"""Projects: list the caller's, create, read, rename, delete; and their members."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from ops import names
from ops.caller import Caller
from ops.errors import Conflict, NotFound
from ops.policy import role_of
from ops.unit import Env, change, global_op, read
from store import projects as repo
from store.images import class_status_counts, image_count
from store.models import Membership, Project, Role, User
from store.users import get_user_by_name, remove_membership, set_membership


@dataclass(frozen=True)
class ProjectInfo:
    id: int
    name: str
    description: str
    created_at: datetime
    images: int
    role: str | None = None
    classes: dict[str, dict[str, int]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None or k == "role"}


def _info(session: Any, project: Project, role: Role | None, classes: bool = False) -> ProjectInfo:
    assert project.id is not None
    return ProjectInfo(
        id=project.id,
        name=project.name,
        description=project.description,
        created_at=project.created_at,
        images=image_count(session, project_id=project.id),
        role=role.value if role else None,
        classes=class_status_counts(session, project_id=project.id) if classes else None,
    )


def list_projects(env: Env, caller: Caller | None) -> list[ProjectInfo]:
    """The projects the caller has a role in (every project for an instance admin), by name."""
    with global_op(env, caller, "project.list", commit=False) as unit:
        statement = select(Project).order_by(col(Project.name))
        if not unit.caller.is_admin:
            mine = select(Membership.project_id).where(Membership.user_id == unit.caller.user_id)
            statement = statement.where(col(Project.id).in_(mine))
        rows = list(unit.session.exec(statement))
        return [_info(unit.session, p, role_of(unit.session, unit.caller, p.id or 0)) for p in rows]


def create_project(env: Env, caller: Caller | None, *, name: str, description: str = "") -> ProjectInfo:
    """A new project; :class:`Conflict` when the name is taken (also under concurrent creates)."""
    clean = names.project_name(name)
    with global_op(env, caller, "project.create", commit=True) as unit:
        if repo.get_project_by_name(unit.session, name=clean) is not None:
            raise Conflict(f"a project named {clean!r} already exists; pick another name or open it")
        project = repo.create_project(unit.session, name=clean, description=str(description))
        assert project.id is not None
        unit.event("project", "created", [project.id], project_id=project.id)
        return _info(unit.session, project, Role.admin)


def find_project(env: Env, caller: Caller | None, name: str) -> int:
    """The id of the project called ``name`` if the caller may see it; NotFound otherwise."""
    with global_op(env, caller, "project.list", commit=False) as unit:
        project = repo.get_project_by_name(unit.session, name=name)
        if project is None or project.id is None or role_of(unit.session, unit.caller, project.id) is None:
            raise NotFound(f"no project named {name!r}")
        return project.id


def get_project(env: Env, caller: Caller | None, project_id: int) -> ProjectInfo:
    with read(env, caller, "project.read", project_id) as unit:
        project = unit.session.get(Project, project_id)
        assert project is not None and unit.access is not None
        return _info(unit.session, project, unit.access.role, classes=True)


def rename_project(env: Env, caller: Caller | None, project_id: int, *, name: str) -> ProjectInfo:
    clean = names.project_name(name)
    with change(env, caller, "project.rename", project_id) as unit:
        other = repo.get_project_by_name(unit.session, name=clean)
        if other is not None and other.id != project_id:
            raise Conflict(f"a project named {clean!r} already exists")
        project = unit.session.get(Project, project_id)
        assert project is not None and unit.access is not None
        project.name = clean
        unit.session.add(project)
        unit.event("project", "updated", [project_id])
        return _info(unit.session, project, unit.access.role)


def delete_project(env: Env, caller: Caller | None, project_id: int) -> None:
    """Delete the project and every row in it (stored image files stay in the data home)."""
    with change(env, caller, "project.delete", project_id) as unit:
        repo.delete_project(unit.session, project_id=project_id)
        unit.event("project", "deleted", [project_id])


def list_members(env: Env, caller: Caller | None, project_id: int) -> list[dict[str, str]]:
    with read(env, caller, "member.list", project_id) as unit:
        rows = unit.session.exec(
            select(User.username, User.display_name, Membership.role)
            .join(Membership, col(Membership.user_id) == col(User.id))
            .where(Membership.project_id == project_id)
            .order_by(col(User.username))
        )
        return [{"username": u, "display_name": d, "role": Role(r).value} for u, d, r in rows]


def set_member(
    env: Env, caller: Caller | None, project_id: int, *, username: str, role: Role | str
) -> dict[str, str]:
    with change(env, caller, "member.set", project_id) as unit:
        user = get_user_by_name(unit.session, username=username)
        if user is None or user.id is None:
            raise NotFound(f"no user named {username!r}; create it with `labelwright users add`")
        membership = set_membership(unit.session, user_id=user.id, project_id=project_id, role=role)
        unit.event("member", "updated", [user.id], data={"username": user.username})
        return {"username": user.username, "role": Role(membership.role).value}


def remove_member(env: Env, caller: Caller | None, project_id: int, *, username: str) -> None:
    with change(env, caller, "member.remove", project_id) as unit:
        user = get_user_by_name(unit.session, username=username)
        if (
            user is None
            or user.id is None
            or not remove_membership(unit.session, user_id=user.id, project_id=project_id)
        ):
            raise NotFound(f"{username!r} is not a member of this project")
        unit.event("member", "deleted", [user.id], data={"username": user.username})
