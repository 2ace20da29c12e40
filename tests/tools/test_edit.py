# ruff: noqa: E501  (the parametrize tables read best one case per line)
"""Bulk edits by criteria on a real seeded store: dry runs, tokens, one undoable batch each."""

from __future__ import annotations

from pathlib import Path

import pytest

from store.db import new_session
from store.history import undo
from tests.agent.devset import TOTAL, World, agent_ctx, build_world
from tests.tools.conftest import FakeBackends
from tools.edit import (
    CONFIRM_OVER,
    DeleteArgs,
    DryRun,
    Edited,
    MergeArgs,
    RelabelArgs,
    RenameArgs,
    StatusArgs,
    preview,
    run_edit,
)
from tools.registry import ToolContext, ToolError


@pytest.fixture
def world(tmp_path: Path, photos: dict[str, Path]) -> World:
    return build_world(tmp_path, photos)


@pytest.fixture
def ctx(world: World) -> ToolContext:
    return agent_ctx(world, FakeBackends())


def statuses(world: World, label: str) -> list[str]:
    return sorted(s for _, c, _, s, _ in world.rows() if c == label)


@pytest.mark.parametrize(
    ("op", "args", "summary"),
    [
        ("delete_annotations", DeleteArgs(label="person"), "delete 7 annotations of class 'person' in 3 images"),
        ("relabel", RelabelArgs(label="person", to="pedestrian"), "relabel 7 annotations of class 'person' in 3 images as 'pedestrian'"),
        ("set_status", StatusArgs(current_status="proposed", status="accepted"), "mark 10 annotations with status proposed in 5 images as accepted"),
        ("delete_annotations", DeleteArgs(everything=True), f"delete {TOTAL} annotations in 5 images"),
    ],
)  # fmt: skip
def test_large_edits_are_dry_runs(world: World, ctx: ToolContext, op: str, args, summary: str) -> None:
    result = run_edit(ctx, op, args)
    assert isinstance(result, DryRun) and result.summary == summary
    assert result.annotations > CONFIRM_OVER and world.total() == TOTAL
    assert "DRY RUN, nothing changed yet" in result.text()


def test_token_applies_exactly_the_previewed_rows(world: World, ctx: ToolContext) -> None:
    dry = run_edit(ctx, "delete_annotations", DeleteArgs(label="person"))
    assert isinstance(dry, DryRun) and preview(ctx, "delete_annotations", DeleteArgs(label="person")) == dry
    done = run_edit(ctx, "delete_annotations", DeleteArgs(label="person"), confirm=dry.token)
    assert isinstance(done, Edited) and done.changed == 7
    assert "person" not in world.counts() and world.total() == TOTAL - 7


def test_stale_or_wrong_token_applies_nothing(world: World, ctx: ToolContext) -> None:
    dry = run_edit(ctx, "relabel", RelabelArgs(label="person", to="pedestrian"))
    with pytest.raises(ToolError, match="changed since the preview"):
        run_edit(ctx, "relabel", RelabelArgs(label="person", to="rider"), confirm=dry.token)
    run_edit(ctx, "delete_annotations", DeleteArgs(label="person", images=["astronaut.png"]))
    with pytest.raises(ToolError, match="changed since the preview"):
        run_edit(ctx, "relabel", RelabelArgs(label="person", to="pedestrian"), confirm=dry.token)
    assert world.counts()["person"] == 6 and "pedestrian" not in world.counts()


def test_small_edits_apply_and_undo_as_one_batch(world: World, ctx: ToolContext) -> None:
    done = run_edit(ctx, "relabel", RelabelArgs(label="car", images=["bus.jpg"], to="truck"))
    assert (
        isinstance(done, Edited)
        and done.summary == "relabel 2 annotations of class 'car' in 1 image as 'truck'"
    )
    assert world.counts("bus.jpg")["truck"] == 2
    with new_session(world.engine) as session:
        assert undo(session, project_id=world.project_id, actor="x").affected == 2  # type: ignore[union-attr]
        session.commit()
    assert world.counts("bus.jpg")["car"] == 2 and "truck" not in world.counts()


def test_score_and_status_filters(world: World, ctx: ToolContext) -> None:
    run_edit(ctx, "set_status", StatusArgs(max_score=0.3, status="rejected"))
    assert (
        statuses(world, "cat") == ["proposed", "rejected"]
        and statuses(world, "person").count("rejected") == 1
    )
    run_edit(ctx, "delete_annotations", DeleteArgs(status="rejected"))
    assert world.total() == TOTAL - 2


def test_rename_moves_every_annotation_without_confirmation(world: World, ctx: ToolContext) -> None:
    done = run_edit(ctx, "rename_class", RenameArgs(old="person", new="pedestrian"))
    assert isinstance(done, Edited) and done.changed == 7
    assert world.counts().get("person") is None and world.counts()["pedestrian"] == 7


def class_names(world: World) -> list[str]:
    from store.categories import list_categories

    with new_session(world.engine) as session:
        return [c.name for c in list_categories(session, project_id=world.project_id)]


def test_rename_leaves_no_empty_old_class_and_undo_and_redo_bring_it_back(
    world: World, ctx: ToolContext
) -> None:
    """Issue 15: a rename left the old, emptied class in the class list beside the new one."""
    from ops.history import step

    before = class_names(world)
    run_edit(ctx, "rename_class", RenameArgs(old="cat", new="kitten"))
    assert "cat" not in class_names(world) and "kitten" in class_names(world)
    assert world.counts().get("kitten") == 2
    step(ctx.env, ctx.caller, world.project_id, "undo")
    assert sorted(class_names(world)) == sorted(before) and world.counts()["cat"] == 2
    step(ctx.env, ctx.caller, world.project_id, "redo")
    assert "cat" not in class_names(world) and world.counts()["kitten"] == 2
    step(ctx.env, ctx.caller, world.project_id, "undo")
    assert sorted(class_names(world)) == sorted(before) and world.counts()["cat"] == 2


def test_rename_of_an_empty_class_renames_the_row(world: World, ctx: ToolContext) -> None:
    run_edit(ctx, "delete_annotations", DeleteArgs(label="cup"))
    done = run_edit(ctx, "rename_class", RenameArgs(old="cup", new="mug"))
    assert isinstance(done, Edited) and done.changed == 0
    from store.categories import list_categories

    with new_session(world.engine) as session:
        names = [c.name for c in list_categories(session, project_id=world.project_id)]
    assert "mug" in names and "cup" not in names


def test_merge_into_new_class(world: World, ctx: ToolContext) -> None:
    done = run_edit(ctx, "merge_classes", MergeArgs(sources=["tie", "cup"], into="accessory"))
    assert isinstance(done, Edited) and world.counts()["accessory"] == 2
    assert "tie" not in world.counts() and "cup" not in world.counts()


@pytest.mark.parametrize(
    ("op", "args", "message"),
    [
        ("delete_annotations", DeleteArgs(label="zebra"), "no class 'zebra'"),
        ("delete_annotations", DeleteArgs(label="cat", images=["nope.jpg"]), "no image 'nope.jpg'"),
        ("rename_class", RenameArgs(old="car", new="bus"), "exists already; use merge_classes"),
        ("merge_classes", MergeArgs(sources=["bus"], into="bus"), "nothing to merge"),
        (
            "delete_annotations",
            DeleteArgs(label="cat", min_score=0.99),
            "no annotations match; nothing to delete",
        ),
    ],
)
def test_mistakes_are_tool_errors_and_change_nothing(
    world: World, ctx: ToolContext, op: str, args, message: str
) -> None:
    with pytest.raises(ToolError, match=message):
        run_edit(ctx, op, args)
    assert world.total() == TOTAL


def test_delete_needs_a_filter() -> None:
    with pytest.raises(ValueError, match="give a filter"):
        DeleteArgs()
