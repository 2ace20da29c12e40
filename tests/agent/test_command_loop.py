"""The labeling loop from plain words, through the command agent and the review agent, with a
scripted model over a planted real-photo project (tests/ops/planted.py): "accept the rest that are
safe" is a dry run until the person's yes, applied as one change that "undo" reverts; "show me the
hardest ones" lists the likeliest wrong proposals first. (Labeling with the project's own detector
through the chat is tests/tools/test_label_trained.py: it needs a trained detector.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.command import CommandAgent
from agent.prompts import COMMAND_TOOLS
from agent.review import ReviewSession
from ops import annotations
from tests.agent.conftest import ScriptedModel, call
from tests.ops.planted import CALLER, Planted, plant
from tools.catalog import command_tools
from tools.registry import ToolContext


@pytest.fixture
def planted(tmp_path: Path, photos: dict[str, Path]) -> Planted:
    p = plant(tmp_path / "home", photos, n=1000, reviewed=0.5, findings=5, seed=1)
    yield p
    p.env.engine.dispose()


def context(p: Planted) -> ToolContext:
    return ToolContext(engine=p.env.engine, project_id=p.project_id, home=p.env.home,
                       models_dir=p.env.home / "models", caller=CALLER)  # fmt: skip


def calls(name: str, **args: Any) -> dict[str, Any]:
    return {"content": "", "tool_calls": [call(name, **args)]}


def statuses(p: Planted) -> dict[str, int]:
    return annotations.count(p.env, CALLER, p.project_id, by="status")


def test_the_loop_tools_are_offered_to_the_command_agent() -> None:
    offered = set(COMMAND_TOOLS)
    assert {
        "calibrate",
        "accept_safe",
        "hardest_proposals",
        "train",
        "label_with_project_detector",
    } <= offered
    assert offered <= set(command_tools().names())


def test_accept_the_safe_ones_waits_for_yes_and_undoes_as_one_change(planted: Planted) -> None:
    before = statuses(planted)
    model = ScriptedModel(calls("accept_safe", precision=0.75), calls("undo"))
    bot = CommandAgent.start(model, "m", context(planted), command_tools(), insist=None)
    turn = bot.send("I reviewed half of them; accept the rest that are safe at 75% precision")
    assert turn.pending is not None and turn.pending.startswith("calibrate: 'car'")
    assert "auto-accept" in turn.pending and "est. precision" in turn.pending
    assert statuses(planted) == before, "a dry run changes nothing"
    done = bot.send("yes")
    assert done.text.startswith("Applied: done: calibrate") and not model.replies[:-1]
    after = statuses(planted)
    assert after["accepted"] > before["accepted"] and after["proposed"] < before["proposed"]
    undone = bot.send("undo that")
    assert undone.tool_calls[0].name == "undo" and not undone.tool_calls[0].error
    assert statuses(planted) == before


def test_calibrate_reports_and_a_no_cancels(planted: Planted) -> None:
    before = statuses(planted)
    model = ScriptedModel(
        calls("calibrate", precision=0.75), calls("accept_safe", precision=0.75), {"content": "OK."}
    )
    bot = CommandAgent.start(model, "m", context(planted), command_tools(), insist=None)
    report = bot.send("which thresholds reach 75% precision?")
    assert (
        report.tool_calls[0].name == "calibrate"
        and "auto-accept" in report.text
        and "est. precision" in report.text
    )
    assert bot.send("accept the rest that are safe").pending is not None
    cancelled = bot.send("no, leave them")
    assert cancelled.pending is None and bot.guard.pending is None
    notes = [m["content"] for m in bot.history() if m["role"] == "assistant"]
    assert any(n.startswith("Cancelled the pending change (it would calibrate") for n in notes)
    assert statuses(planted) == before


def test_show_me_the_hardest_ones_in_both_agents(planted: Planted) -> None:
    model = ScriptedModel(calls("hardest_proposals", limit=3))
    bot = CommandAgent.start(model, "m", context(planted), command_tools(), insist=None)
    turn = bot.send("show me the hardest ones")
    lines = turn.text.splitlines()
    assert len(lines) == 3 and all("p(wrong)" in line for line in lines)
    worst = [float(line.rsplit("p(wrong) ", 1)[1].split(",")[0]) for line in lines]
    assert worst == sorted(worst, reverse=True)
    assert {int(line.split()[0][1:]) for line in lines} <= set(planted.held_out), "pending proposals only"

    review = ScriptedModel(calls("hardest_proposals", limit=3), {"content": "Here are the three."})
    session = ReviewSession(review, "m", context(planted))
    said = session.send("show me the hardest ones")
    assert [c.name for c in said.tool_calls if c.name == "hardest_proposals"] == ["hardest_proposals"]
    shown = next(c.result for c in said.tool_calls if c.name == "hardest_proposals")
    assert shown.splitlines() == lines


def test_train_says_why_it_cannot_start(planted: Planted) -> None:
    model = ScriptedModel(calls("train", epochs=1), {"content": "I need more accepted labels."})
    turn = CommandAgent.start(model, "m", context(planted), command_tools(), insist=None).send(
        "train a detector on our labels"
    )
    (record,) = turn.tool_calls
    assert record.error and "training needs accepted labels on at least 8 images, got 6" in record.result
