"""Projects: the list shows only the caller's projects; create needs an instance admin; rename
and delete need the project's admin; a name is checked on every write."""

from __future__ import annotations

import pytest

from ops import projects
from ops.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from ops.unit import Env
from store.db import new_session
from store.events import events_after
from tests.ops.conftest import caller_of
from tests.server.conftest import World


@pytest.mark.parametrize(
    ("who", "visible"),
    [
        ("root", {"other": "admin", "streets": "admin"}),
        ("admin", {"streets": "admin"}),
        ("viewer", {"streets": "viewer"}),
        ("outsider", {}),
        ("alice", {}),
    ],
)
def test_list_shows_only_projects_with_a_role(ops_world: tuple[World, Env], who: str, visible: dict) -> None:
    _, env = ops_world
    listed = projects.list_projects(env, caller_of(env.engine, who))
    assert {p.name: p.role for p in listed} == visible
    assert [p.name for p in listed] == sorted(visible)  # by name


def test_anonymous_lists_nothing(ops_world: tuple[World, Env]) -> None:
    _, env = ops_world
    with pytest.raises(Unauthenticated):
        projects.list_projects(env, None)


def test_find_and_get_do_not_reveal_other_projects(ops_world: tuple[World, Env]) -> None:
    world, env = ops_world
    viewer = caller_of(env.engine, "viewer")
    assert projects.find_project(env, viewer, "streets") == world.project_id
    with pytest.raises(NotFound):
        projects.find_project(env, viewer, "other")  # exists, but not theirs: same answer as absent
    with pytest.raises(Forbidden, match="not a member"):
        projects.get_project(env, viewer, world.other_project_id)
    with pytest.raises(Forbidden, match="not a member"):
        projects.get_project(env, viewer, 999)


def test_create_rename_check_names_and_record_events(ops_world: tuple[World, Env]) -> None:
    world, env = ops_world
    root = caller_of(env.engine, "root")
    with pytest.raises(Forbidden, match="instance admin"):
        projects.create_project(env, caller_of(env.engine, "admin"), name="mine")
    with pytest.raises(Invalid, match="'/'"):
        projects.create_project(env, root, name="../../../../tmp/x")
    made = projects.create_project(env, root, name=" fresh ")
    assert (made.name, made.role, made.images) == ("fresh", "admin", 0)
    with pytest.raises(Conflict):
        projects.create_project(env, root, name="fresh")
    with pytest.raises(Conflict):
        projects.rename_project(env, root, made.id, name="streets")
    with pytest.raises(Invalid, match=r"U\+000A"):
        projects.rename_project(env, root, made.id, name="two\nlines")
    assert projects.rename_project(env, root, made.id, name="renamed").name == "renamed"
    with new_session(env.engine) as session:
        events = events_after(session, after_id=0, project_id=made.id)
    assert [(e.kind, e.action, e.actor, e.via) for e in events] == [
        ("project", "created", "root", "api"),
        ("project", "updated", "root", "api"),
    ]
