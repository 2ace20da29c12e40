"""The unit of work: a change and its event commit together or not at all, refusals write
nothing, bad input and lost races become the right refusal."""

from __future__ import annotations

import threading

import pytest
from sqlmodel import select

from ops import categories, projects
from ops.annotations import NewAnnotation, create, update
from ops.bulk import edit
from ops.caller import local_caller
from ops.errors import Conflict, Forbidden, Invalid
from ops.unit import change
from store.db import new_session
from store.events import events_after, latest_event_id
from store.models import Annotation, ChangeBatch, ProjectEvent
from tests.ops.conftest import caller_of

ME = local_caller("cli")


def _events(env, after: int) -> list[ProjectEvent]:
    with new_session(env.engine) as session:
        return events_after(session, after_id=after)


def test_a_change_and_its_event_commit_together(ops_world) -> None:
    world, env = ops_world
    with new_session(env.engine) as session:
        before = latest_event_id(session)
    (ann,) = create(
        env, ME, world.project_id, image_id=world.images["bus.jpg"],
        items=[NewAnnotation(label="person", bbox=[10, 20, 100, 200])],
    )  # fmt: skip
    (event,) = [e for e in _events(env, before) if e.kind == "annotation"]
    assert (event.action, event.ids, event.actor, event.via) == ("created", [ann.id], "local", "cli")
    with new_session(env.engine) as session:
        batch = session.exec(select(ChangeBatch).order_by(ChangeBatch.id.desc())).first()  # type: ignore[union-attr]
    assert (batch.actor, batch.via) == ("local", "cli")


def test_a_failed_change_writes_neither_rows_nor_events(ops_world) -> None:
    world, env = ops_world
    with new_session(env.engine) as session:
        before, count = latest_event_id(session), len(session.exec(select(Annotation)).all())
    with pytest.raises(Invalid, match="must lie inside"):
        create(
            env, ME, world.project_id, image_id=world.images["bus.jpg"],
            items=[NewAnnotation(label="person", bbox=[10, 20, 100, 200]),
                   NewAnnotation(label="person", bbox=[700, 20, 900, 200])],
        )  # fmt: skip
    assert _events(env, before) == []
    with new_session(env.engine) as session:
        assert len(session.exec(select(Annotation)).all()) == count


def test_a_refused_caller_changes_nothing(ops_world) -> None:
    world, env = ops_world
    viewer = caller_of(env.engine, "viewer")
    with new_session(env.engine) as session:
        before = latest_event_id(session)
    with pytest.raises(Forbidden, match="annotator role"):
        update(env, viewer, world.project_id, world.annotation_id, version=1, score=0.1)
    with pytest.raises(Forbidden):
        with change(env, viewer, "annotation.edit", world.project_id):
            raise AssertionError("never runs")
    assert _events(env, before) == []


def test_concurrent_creates_of_one_name_give_one_project_and_conflicts(ops_world) -> None:
    _, env = ops_world
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def make() -> None:
        barrier.wait()
        try:
            projects.create_project(env, ME, name="race")
            outcomes.append("created")
        except Conflict:
            outcomes.append("conflict")
        except Exception as exc:  # anything else is the bug this test is for
            outcomes.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=make) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["conflict"] * 7 + ["created"]


def test_a_confirmation_fails_when_a_row_changed_since_the_preview(ops_world) -> None:
    world, env = ops_world
    for i in range(4):
        create(
            env, ME, world.project_id, image_id=world.images["zidane.jpg"],
            items=[NewAnnotation(label="tie", bbox=[10 + i, 20, 50, 50])],
        )  # fmt: skip
    dry = edit(env, ME, world.project_id, "delete_annotations", {"label": "tie"})
    assert dry.__class__.__name__ == "DryRun" and dry.annotations == 4  # type: ignore[union-attr]
    with new_session(env.engine) as session:
        first = session.exec(
            select(Annotation).where(Annotation.tool == "manual").order_by(Annotation.id)
        ).all()[-1]
    update(env, ME, world.project_id, first.id or 0, version=first.version, score=0.42)  # someone edits one
    with pytest.raises(Conflict, match="changed since the preview"):
        edit(env, ME, world.project_id, "delete_annotations", {"label": "tie"}, confirm=dry.token)  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["", "   ", "a" * 65, "dog\u202e", "cat\nmouse"])
def test_class_names_are_checked_for_every_surface(ops_world, name: str) -> None:
    world, env = ops_world
    with pytest.raises(Invalid, match="class name"):
        categories.ensure(env, ME, world.project_id, [name])
