"""Exports land in a fresh folder under <home>/exports named by id and slug, whatever the
project's name: a project named ``../../../../tmp/x`` (written before names were checked, so made
here directly in the store) exports inside the data home."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ops import exports
from ops.errors import Invalid
from ops.unit import Env
from store.db import new_session
from store.projects import create_project
from store.users import get_user_by_name, set_membership
from tests.ops.conftest import caller_of
from tests.server.conftest import World

HOSTILE = "../../../../tmp/x"


def hostile_project(env: Env) -> int:
    with new_session(env.engine) as session:
        project = create_project(session, name=HOSTILE)
        viewer = get_user_by_name(session, username="viewer")
        set_membership(session, user_id=viewer.id, project_id=project.id, role="viewer")  # type: ignore[union-attr, arg-type]
        session.commit()
        return project.id  # type: ignore[return-value]


def outside(home: Path, before: set[Path]) -> set[Path]:
    """Files that appeared beside the data home (where a ``..`` name would have sent them)."""
    return {p for p in home.parent.rglob("*") if home not in p.parents and p != home} - before


@pytest.mark.parametrize("fmt", ["coco", "yolo", "masks"])
def test_a_hostile_name_exports_inside_home(ops_world: tuple[World, Env], fmt: str) -> None:
    _, env = ops_world
    pid = hostile_project(env)
    before = {p for p in env.home.parent.rglob("*") if env.home not in p.parents}
    naive = (env.home / "exports" / HOSTILE).resolve().parent  # where the name as given points
    near = set(naive.glob("x*"))
    done = exports.export(env, caller_of(env.engine, "viewer"), pid, fmt)
    assert set(naive.glob("x*")) == near
    folder = done.path.resolve().parent
    assert folder.parent == (env.home / "exports").resolve()
    assert folder.name.startswith(f"{pid}-tmp_x-") and ".." not in done.path.parts
    assert outside(env.home, before) == set()


def test_coco_export_reports_and_refuses_bad_input(ops_world: tuple[World, Env]) -> None:
    world, env = ops_world
    viewer = caller_of(env.engine, "viewer")
    done = exports.export(env, viewer, world.project_id, "coco")
    assert done.path.name == "annotations.json" and done.report["annotations"] == 1
    assert len(json.loads(done.path.read_text())["annotations"]) == 1
    with pytest.raises(Invalid, match="format"):
        exports.export(env, viewer, world.project_id, "pascal")
    with pytest.raises(Invalid, match="statuses"):
        exports.export(env, viewer, world.project_id, "coco", statuses=["maybe"])
    assert sorted(p.name for p in (env.home / "exports").iterdir()) == [done.path.parent.name]


def test_the_agents_export_tool_stays_inside_home(ops_world: tuple[World, Env]) -> None:
    """The same rule through the agent's surface: its export tool names no path of its own."""
    from tools.export_tool import TOOL
    from tools.registry import ToolContext

    _, env = ops_world
    pid = hostile_project(env)
    before = {p for p in env.home.parent.rglob("*") if env.home not in p.parents}
    viewer = caller_of(env.engine, "viewer", via="agent")
    assert viewer is not None
    ctx = ToolContext(
        engine=env.engine, project_id=pid, home=env.home, models_dir=env.home / "models", caller=viewer
    )
    result = TOOL(ctx, {})
    path = Path(result.path).resolve()  # type: ignore[attr-defined]
    assert (env.home / "exports").resolve() in path.parents and path.name == "annotations.json"
    assert json.loads(path.read_text())["images"] == []
    assert outside(env.home, before) == set()
