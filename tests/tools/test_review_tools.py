"""The review tools on a real store: each action closes its finding, and undo reverts the action."""

from __future__ import annotations

from typing import Any

import pytest

from store.db import new_session
from store.findings import get_finding, upsert_finding
from store.history import undo
from store.models import Annotation
from tests.tools.audit.test_runner import add, audit
from tests.tools.conftest import FakeBackends, Store
from tools.registry import ToolError
from tools.review_tools import ReviewState, review_tools


@pytest.fixture
def seeded(store: Store) -> dict[str, int]:
    ids = {
        "bus": add(store, "bus.jpg", "bus", [18, 230, 787, 490]),
        "dup": add(store, "bus.jpg", "bus", [20, 232, 785, 488], score=0.5),
        "tiny": add(store, "zidane.jpg", "tie", [440, 430, 3, 3]),
        "tiny2": add(store, "zidane.jpg", "tie", [900, 100, 2.5, 3]),
    }
    add(store, "zidane.jpg", "truck", [100, 100, 300, 200])  # a class to relabel to
    audit(store)
    return ids


def state_of(store: Store, annotation_id: int) -> tuple[Any, ...] | None:
    with new_session(store.engine) as session:
        ann = session.get(Annotation, annotation_id)
        return None if ann is None else (ann.category_id, ann.status.value, ann.bbox, ann.mask is not None)


def finding(store: Store, finding_id: int) -> tuple[str, str]:
    with new_session(store.engine) as session:
        row = get_finding(session, finding_id=finding_id)
        return row.status, row.resolution  # type: ignore[union-attr]


def call(store: Store, state: ReviewState, name: str, backends: Any = None, **args: Any) -> str:
    return review_tools(state).get(name)(store.ctx(backends), args).text()


def test_next_finding_shows_the_worst_with_its_annotation(store: Store, seeded: dict[str, int]) -> None:
    state = ReviewState()
    text = call(store, state, "next_finding")
    assert text.startswith(f"finding {state.current} (")
    assert f"duplicate on bus.jpg: duplicates bus #{seeded['bus']}" in text
    assert f"annotation #{seeded['dup']} bus box [20, 232, 785, 488] score 0.50 proposed" in text


@pytest.mark.parametrize(
    ("tool", "args", "resolution", "after"),
    [
        ("accept_as_is", {}, "accepted", lambda old: (old[0], "accepted", old[2], old[3])),
        ("reject_annotation", {}, "rejected", lambda old: (old[0], "rejected", old[2], old[3])),
        ("relabel", {"label": "truck"}, "relabelled", lambda old: ("truck", old[1], old[2], old[3])),
        ("delete_annotation", {}, "deleted", lambda old: None),
        (
            "adjust_box",
            {"box": [30, 240, 700, 700]},
            "fixed",
            lambda old: (old[0], old[1], [30, 240, 670, 460], False),
        ),
        (
            "resegment",
            {"box": [30, 240, 700, 700]},
            "fixed",
            lambda old: (old[0], old[1], [30, 240, 670, 460], True),
        ),
    ],
)
def test_each_action_closes_the_finding_and_undo_reverts_it(
    store: Store, seeded: dict[str, int], tool: str, args: dict, resolution: str, after: Any
) -> None:
    state = ReviewState()
    call(store, state, "next_finding")
    shown = state.current
    before = state_of(store, seeded["dup"])
    text = call(store, state, tool, FakeBackends(), **args)
    assert "\nnext: finding " in text and state.current != shown
    assert finding(store, shown) == ("closed", resolution)  # type: ignore[arg-type]
    expected = after(before)
    if expected is not None and expected[0] == "truck":
        with new_session(store.engine) as session:
            truck = session.get(Annotation, seeded["dup"] + 3).category_id  # type: ignore[union-attr]
        expected = (truck, *expected[1:])
    now = state_of(store, seeded["dup"])
    if tool == "resegment":  # the fake segmenter draws an ellipse inside the box
        assert now is not None and now[3] and now[2][0] >= 30 and now[2][0] + now[2][2] <= 700
    else:
        assert now == expected
    with new_session(store.engine) as session:
        assert undo(session, project_id=store.project_id, actor="tester") is not None
        session.commit()
    assert state_of(store, seeded["dup"]) == before


def test_model_mistakes_are_tool_errors(store: Store, seeded: dict[str, int]) -> None:
    state = ReviewState()
    with pytest.raises(ToolError, match="call next_finding first"):
        call(store, state, "accept_as_is")
    text = call(store, state, "next_finding")
    with pytest.raises(ToolError, match="no class 'trukc' in this project; did you mean truck"):
        call(store, state, "relabel", label="trukc")
    with pytest.raises(ToolError, match="box must be"):
        call(store, state, "adjust_box", box=[50, 50, 10, 10])
    while "unlabelled_image" not in text:
        text = call(store, state, "skip")
    with pytest.raises(ToolError, match="is about the image or project: accept_as_is or skip it"):
        call(store, state, "delete_annotation")
    unlabelled = state.current
    call(store, state, "accept_as_is")
    assert finding(store, unlabelled) == ("closed", "accepted")  # type: ignore[arg-type]
    state.current = unlabelled  # e.g. a stale UI: acting twice on one finding
    with pytest.raises(ToolError, match="already closed"):
        call(store, state, "accept_as_is")


def test_skip_moves_on_and_the_queue_ends(store: Store, seeded: dict[str, int]) -> None:
    state = ReviewState()
    call(store, state, "next_finding")
    seen = []
    for _ in range(30):
        seen.append(state.current)
        text = call(store, state, "skip")
        if "no open findings left" in text:
            break
    assert len(seen) == len(set(seen)) and state.current is None
    assert text.endswith(f"no open findings left ({len(seen)} skipped)")


def test_delete_all_of_kind_is_a_dry_run_until_confirmed(store: Store, seeded: dict[str, int]) -> None:
    state = ReviewState()
    registry = review_tools(state)
    dry = call(store, state, "delete_all_of_kind", kind="tiny_box")
    assert dry.startswith(
        "DRY RUN, nothing changed yet: this will delete 2 annotations flagged tiny_box on 1 images"
    )
    assert state_of(store, seeded["tiny"]) is not None
    tool = registry.get("delete_all_of_kind")
    args = tool.parse({"kind": "tiny_box"})
    with pytest.raises(ToolError, match="changed since the dry run"):
        tool.confirm(store.ctx(), args, "not-the-token")  # type: ignore[misc]
    token = tool(store.ctx(), {"kind": "tiny_box"}).token  # type: ignore[attr-defined]
    done = tool.confirm(store.ctx(), args, token).text()  # type: ignore[misc]
    assert done.startswith("deleted 2 annotations flagged tiny_box")
    assert state_of(store, seeded["tiny"]) is None and state_of(store, seeded["tiny2"]) is None
    with pytest.raises(ToolError, match="changed since the dry run"):
        tool.confirm(store.ctx(), args, token)  # type: ignore[misc]  # used up: the rows are gone
    with new_session(store.engine) as session:
        assert undo(session, project_id=store.project_id, actor="tester").affected == 2  # type: ignore[union-attr]
        session.commit()
    assert state_of(store, seeded["tiny"]) is not None and state_of(store, seeded["tiny2"]) is not None


def test_resegment_adds_a_missing_object(store: Store, seeded: dict[str, int]) -> None:
    with new_session(store.engine) as session:
        row = upsert_finding(
            session,
            project_id=store.project_id,
            kind="missing_object",
            fingerprint="m1",
            message="unlabelled person? the detector sees one at 0.99",
            severity=1.0,
            confidence=1.0,
            image_id=store.images["bus.jpg"],
            bbox=[50, 400, 195, 500],
            evidence={"class": "person"},
        )
        session.commit()  # repositories flush; the caller commits
    state = ReviewState()
    assert "box [50, 400, 195, 500] (resegment adds it)" in call(store, state, "next_finding")
    text = call(store, state, "resegment", FakeBackends())
    assert text.startswith("added #") and " person box [" in text
    assert finding(store, row.id) == ("closed", "added")  # type: ignore[arg-type]
