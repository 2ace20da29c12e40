from __future__ import annotations

import pytest
from sqlmodel import Session, col, select

from store.annotations import create_annotation, delete_annotations, get_annotation, update_annotation
from store.categories import ensure_categories
from store.errors import StaleWriteError
from store.history import begin_change, redo, undo
from store.models import Annotation, AnnotationEvent, ChangeBatch, Image, Project
from store.projects import create_project


@pytest.fixture
def car(session: Session, project: Project) -> int:
    return ensure_categories(session, project_id=project.id, names=["car"])[0].id


def _change(
    session: Session, project: Project, actor: str = "alice", description: str = "edit"
) -> ChangeBatch:
    return begin_change(session, project_id=project.id, actor=actor, description=description)


def _boxes(session: Session, project: Project) -> dict[int, list[float]]:
    rows = session.exec(select(Annotation).where(Annotation.project_id == project.id)).all()
    return {a.id: a.bbox for a in rows}


def _event_rows(session: Session) -> list[tuple]:
    events = session.exec(select(AnnotationEvent).order_by(col(AnnotationEvent.id))).all()
    return [(e.id, e.batch_id, e.annotation_id, e.action, e.before, e.after) for e in events]


def _add(
    session: Session, project: Project, image: Image, car: int, n: int, description: str = "add"
) -> list[int]:
    batch = _change(session, project, description=description)
    ids = [
        create_annotation(session, batch=batch, image_id=image.id, category_id=car, bbox=[i, i, 5, 5]).id
        for i in range(n)
    ]
    session.commit()
    return ids


def test_nothing_to_undo_or_redo(session: Session, project: Project) -> None:
    assert undo(session, project_id=project.id, actor="alice") is None
    assert redo(session, project_id=project.id, actor="alice") is None
    _change(session, project)  # an opened batch that wrote nothing is not undoable
    session.commit()
    assert undo(session, project_id=project.id, actor="alice") is None


def test_undo_redo_of_creates(session: Session, project: Project, image: Image, car: int) -> None:
    ids = _add(session, project, image, car, 3, "three boxes")
    result = undo(session, project_id=project.id, actor="bob")
    assert result is not None and result.description == "three boxes" and result.affected == 3
    assert _boxes(session, project) == {}
    again = redo(session, project_id=project.id, actor="bob")
    assert again is not None and again.affected == 3
    assert sorted(_boxes(session, project)) == ids  # recreated with their original ids
    kinds = session.exec(select(ChangeBatch.kind).order_by(col(ChangeBatch.id))).all()
    assert kinds == ["change", "undo", "redo"]


def test_undo_of_a_delete_restores_rows_with_their_ids_and_fields(
    session: Session, project: Project, image: Image, car: int
) -> None:
    ids = _add(session, project, image, car, 2)
    before = {i: get_annotation(session, annotation_id=i).model_dump() for i in ids}
    batch = _change(session, project, description="delete two")
    delete_annotations(session, batch=batch, ids=ids)
    session.commit()
    assert undo(session, project_id=project.id, actor="alice").affected == 2
    for i in ids:
        restored = get_annotation(session, annotation_id=i).model_dump()
        assert restored["version"] == before[i]["version"] + 1
        assert {k: v for k, v in restored.items() if k not in ("version", "updated_at")} == {
            k: v for k, v in before[i].items() if k not in ("version", "updated_at")
        }
    assert redo(session, project_id=project.id, actor="alice").affected == 2
    assert _boxes(session, project) == {}


def test_undo_of_an_update_and_events_stay_append_only(
    session: Session, project: Project, image: Image, car: int
) -> None:
    (ann,) = _add(session, project, image, car, 1)
    batch = _change(session, project, description="move")
    update_annotation(session, batch=batch, annotation_id=ann, bbox=[100, 100, 20, 20])
    session.commit()
    log = _event_rows(session)
    undo(session, project_id=project.id, actor="alice")
    assert get_annotation(session, annotation_id=ann).bbox == [0.0, 0.0, 5.0, 5.0]
    assert _event_rows(session)[: len(log)] == log  # earlier events untouched
    assert len(_event_rows(session)) == len(log) + 1
    redo(session, project_id=project.id, actor="alice")
    assert get_annotation(session, annotation_id=ann).bbox == [100.0, 100.0, 20.0, 20.0]
    undo(session, project_id=project.id, actor="alice")  # undo after redo inverts the redo batch
    assert get_annotation(session, annotation_id=ann).bbox == [0.0, 0.0, 5.0, 5.0]


def test_undo_walks_back_and_redo_forward_in_order(
    session: Session, project: Project, image: Image, car: int
) -> None:
    (ann,) = _add(session, project, image, car, 1, "create")
    for x in (10, 20):
        batch = _change(session, project, description=f"move to {x}")
        update_annotation(session, batch=batch, annotation_id=ann, bbox=[x, 0, 5, 5])
        session.commit()
    x = lambda: get_annotation(session, annotation_id=ann).bbox[0]  # noqa: E731
    assert undo(session, project_id=project.id, actor="a").description == "move to 20" and x() == 10
    assert undo(session, project_id=project.id, actor="a").description == "move to 10" and x() == 0
    assert redo(session, project_id=project.id, actor="a").description == "move to 10" and x() == 10
    assert redo(session, project_id=project.id, actor="a").description == "move to 20" and x() == 20
    assert redo(session, project_id=project.id, actor="a") is None


def test_a_new_change_empties_the_redo_stack(
    session: Session, project: Project, image: Image, car: int
) -> None:
    _add(session, project, image, car, 1, "first")
    _add(session, project, image, car, 1, "second")
    undo(session, project_id=project.id, actor="alice")
    _add(session, project, image, car, 1, "third")
    assert redo(session, project_id=project.id, actor="alice") is None
    assert undo(session, project_id=project.id, actor="alice").description == "third"
    assert redo(session, project_id=project.id, actor="alice").description == "third"
    assert undo(session, project_id=project.id, actor="alice").description == "third"
    assert undo(session, project_id=project.id, actor="alice").description == "first"  # "second" stays undone


def test_own_undo_refuses_to_clobber_a_later_edit_by_someone_else(
    session: Session, project: Project, image: Image, car: int
) -> None:
    (ann,) = _add(session, project, image, car, 1)
    alice = _change(session, project, actor="alice", description="alice moves")
    update_annotation(session, batch=alice, annotation_id=ann, bbox=[10, 10, 5, 5])
    session.commit()
    bob = _change(session, project, actor="bob", description="bob resizes")
    update_annotation(session, batch=bob, annotation_id=ann, bbox=[10, 10, 40, 40])
    session.commit()
    log = _event_rows(session)
    with pytest.raises(StaleWriteError, match=f"cannot undo annotation {ann}: .*last changed by 'bob'"):
        undo(session, project_id=project.id, actor="alice", own=True)
    session.rollback()
    assert _event_rows(session) == log  # nothing written
    assert get_annotation(session, annotation_id=ann).bbox == [10.0, 10.0, 40.0, 40.0]
    assert session.get(ChangeBatch, alice.id).undone is False
    # Once bob undoes his resize, the row is as alice left it and her undo goes through.
    assert undo(session, project_id=project.id, actor="bob", own=True).description == "bob resizes"
    assert undo(session, project_id=project.id, actor="alice", own=True).description == "alice moves"
    assert get_annotation(session, annotation_id=ann).bbox == [0.0, 0.0, 5.0, 5.0]


def test_redo_refuses_to_clobber_an_edit_made_after_the_undo(
    session: Session, project: Project, image: Image, car: int
) -> None:
    (ann,) = _add(session, project, image, car, 1)
    alice = _change(session, project, actor="alice", description="alice moves")
    update_annotation(session, batch=alice, annotation_id=ann, bbox=[10, 10, 5, 5])
    session.commit()
    undo(session, project_id=project.id, actor="alice", own=True)
    bob = _change(session, project, actor="bob", description="bob accepts")
    update_annotation(session, batch=bob, annotation_id=ann, status="accepted")
    session.commit()
    with pytest.raises(StaleWriteError, match="cannot redo"):
        redo(session, project_id=project.id, actor="alice", own=True)  # bob's change is not alice's
    assert get_annotation(session, annotation_id=ann).status == "accepted"


def test_own_stacks_are_separate(session: Session, project: Project, image: Image, car: int) -> None:
    _add(session, project, image, car, 1, "alice adds")
    bob = _change(session, project, actor="bob", description="bob adds")
    create_annotation(session, batch=bob, image_id=image.id, category_id=car, bbox=[50, 50, 5, 5])
    session.commit()
    assert undo(session, project_id=project.id, actor="alice", own=True).description == "alice adds"
    assert undo(session, project_id=project.id, actor="alice", own=True) is None
    assert list(_boxes(session, project).values()) == [[50.0, 50.0, 5.0, 5.0]]


def test_a_batch_that_creates_then_edits_is_undone_as_a_whole(
    session: Session, project: Project, image: Image, car: int
) -> None:
    batch = _change(session, project, description="draw and fix")
    ann = create_annotation(session, batch=batch, image_id=image.id, category_id=car, bbox=[0, 0, 5, 5])
    update_annotation(session, batch=batch, annotation_id=ann.id, bbox=[0, 0, 9, 9])
    update_annotation(session, batch=batch, annotation_id=ann.id, status="accepted")
    session.commit()
    assert undo(session, project_id=project.id, actor="alice").affected == 1
    assert _boxes(session, project) == {}
    assert redo(session, project_id=project.id, actor="alice").affected == 1
    restored = get_annotation(session, annotation_id=ann.id)
    assert restored.bbox == [0.0, 0.0, 9.0, 9.0] and restored.status == "accepted"


def test_depth_limits_how_far_back_undo_goes(
    session: Session, project: Project, image: Image, car: int
) -> None:
    for i in range(3):
        _add(session, project, image, car, 1, f"add {i}")
    assert undo(session, project_id=project.id, actor="a", depth=2).description == "add 2"
    assert undo(session, project_id=project.id, actor="a", depth=2).description == "add 1"
    assert undo(session, project_id=project.id, actor="a", depth=2) is None
    assert len(_boxes(session, project)) == 1


def test_projects_have_separate_histories(session: Session, project: Project, image: Image, car: int) -> None:
    _add(session, project, image, car, 1)
    other = create_project(session, name="other")
    assert undo(session, project_id=other.id, actor="alice") is None
    assert len(_boxes(session, project)) == 1


def test_rows_created_and_deleted_in_one_batch_have_no_net_effect(
    session: Session, project: Project, image: Image, car: int
) -> None:
    (kept,) = _add(session, project, image, car, 1)
    batch = _change(session, project, description="draw, regret, draw")
    scratch = create_annotation(session, batch=batch, image_id=image.id, category_id=car, bbox=[9, 9, 5, 5])
    delete_annotations(session, batch=batch, ids=[scratch.id])
    create_annotation(session, batch=batch, image_id=image.id, category_id=car, bbox=[20, 20, 5, 5])
    session.commit()
    assert undo(session, project_id=project.id, actor="alice").affected == 1
    assert list(_boxes(session, project)) == [kept]
