"""The video dev set's fixture and checks, against a scripted model (the real model's run is
tests/agent/test_devset.py::test_video_devset_success_rate): the right tool calls pass every case,
and the wrong ones (counting boxes, a change without the person's yes) fail it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.agent.conftest import ScriptedModel, call
from tests.agent.devset import Case, World, copy_world, run_case
from tests.agent.devset_video import BOXES, SEEDED, VIDEO_CASES, build_video_world, on_track
from tests.tools.conftest import FakeBackends

CASE = {c.name: c for c in VIDEO_CASES}
RIGHT = {
    "video count objects": [("count_objects", {"label": "person"})],
    "video find frames": [("find_frames", {"track": 3})],
    "video merge confirm": [("merge_tracks", {"into": 3, "others": [4]})],
    "video delete confirm": [("delete_track", {"track": 2})],
}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, clips: dict[str, Path]) -> World:
    return build_video_world(tmp_path_factory.mktemp("devset-video"), clips["vtest.avi"])


def run(case: Case, script: list[tuple[str, dict[str, Any]]], world: World, dest: Path) -> Any:
    model = ScriptedModel(*({"content": "", "tool_calls": [call(name, **args)]} for name, args in script))
    return run_case(
        case, model, "m", copy_world(world, dest), FakeBackends(), model_answers=False, insist=None
    )


def test_the_fixture_holds_four_tracks_of_known_spans(seeded: World) -> None:
    assert on_track(seeded) == SEEDED and sum(SEEDED.values()) == BOXES == 36
    assert len(seeded.images) == 12


@pytest.mark.parametrize("name", sorted(RIGHT))
def test_the_right_tools_pass_the_case(name: str, seeded: World, tmp_path: Path) -> None:
    assert set(RIGHT) == set(CASE)
    outcome = run(CASE[name], RIGHT[name], seeded, tmp_path / "w")
    assert outcome.ok, (outcome.reason, outcome.answers)


@pytest.mark.parametrize(
    ("name", "script", "turns"),
    [
        ("video count objects", [("count", {"label": "person"})], None),  # boxes, not objects
        ("video find frames", [("find_frames", {"track": 4})], None),
        (
            "video merge confirm",
            [("merge_tracks", {"into": 3, "others": [4]})],
            ["Merge track 4 into track 3."],
        ),
        ("video delete confirm", [("delete_track", {"track": 2})], ["Delete track 2."]),
    ],
)
def test_the_wrong_outcome_fails_the_case(
    name: str,
    script: list[tuple[str, dict[str, Any]]],
    turns: list[str] | None,
    seeded: World,
    tmp_path: Path,
) -> None:
    case = CASE[name] if turns is None else Case(name, turns, CASE[name].check, "video")
    outcome = run(case, script, seeded, tmp_path / "w")
    assert not outcome.ok, outcome.answers
