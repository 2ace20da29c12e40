"""The command agent's logic against a scripted model and a real store (devset's seeded project).

The model's replies are scripted, so these tests check what our code guarantees whatever a model
does: large changes wait for the user's "yes", anything else cancels them, file names cannot
trigger changes, conversations persist and resume, labeling jobs report their outcome.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from agent.command import HISTORY, CommandAgent, _window
from agent.events import AssistantText, Final, ToolCall, ToolResult
from agent.pending import is_confirmation
from agent.prompts import COMMAND_TOOLS, SYSTEM, compact_schema
from ops.errors import NotFound
from store.conversations import get_messages
from store.db import new_session
from tests.agent.conftest import ScriptedModel, call
from tests.agent.devset import INJECTION, TOTAL, World, agent_ctx, build_world
from tests.tools.conftest import FakeBackends
from tools.catalog import command_tools


@pytest.fixture
def world(tmp_path: Path, photos: dict[str, Path]) -> World:
    return build_world(tmp_path, photos)


def agent(world: World, model: ScriptedModel, **kw: Any) -> CommandAgent:
    """An agent whose answers come from the scripted model (``model_answers``), as most tests
    script them, and that takes a plain first answer as is (no ``insist`` reminder); see the
    ResultAnswers and insist tests for the defaults."""
    kw.setdefault("model_answers", True)
    kw.setdefault("insist", None)
    return CommandAgent.start(model, "m", agent_ctx(world, FakeBackends()), command_tools(), **kw)


def says(text: str) -> dict[str, Any]:
    return {"content": text}


def calls(name: str, **args: Any) -> dict[str, Any]:
    return {"content": "", "tool_calls": [call(name, **args)]}


DELETE_PERSONS = calls("delete_annotations", label="person")


def test_small_change_applies_at_once(world: World) -> None:
    model = ScriptedModel(calls("delete_annotations", max_score=0.3), says("Deleted 2."))
    turn = agent(world, model).send("delete everything scoring below 0.3")
    assert world.total() == TOTAL - 2
    assert turn.pending is None and turn.tool_calls[0].result.startswith("done: delete 2 annotations")


def test_large_change_is_a_dry_run_until_yes(world: World) -> None:
    model = ScriptedModel(DELETE_PERSONS, says("Deleted them all!"))
    bot = agent(world, model)
    events: list[Any] = []
    turn = bot.send("delete all persons", on_event=events.append)
    assert world.counts()["person"] == 7  # the model claimed success; nothing happened
    assert turn.pending == "delete 7 annotations of class 'person' in 3 images"
    assert "Waiting for your yes: this will delete 7 annotations" in turn.text
    assert turn.tool_calls[0].result.startswith("DRY RUN, nothing changed yet")
    events.clear()
    done = bot.send("Yes, please!", on_event=events.append)  # applied in code, the model is not asked
    assert "person" not in world.counts() and world.total() == TOTAL - 7
    assert done.text.startswith("Applied: done: delete 7 annotations")
    assert [type(e) for e in events] == [ToolCall, ToolResult, Final]
    assert events[0].args["confirm"] and not model.replies


@pytest.mark.parametrize("reply", ["no", "yes, but only on bus.jpg", "how many cats?", "delete them"])
def test_anything_but_a_plain_yes_cancels(world: World, reply: str) -> None:
    model = ScriptedModel(DELETE_PERSONS, says("Shall I?"), says("OK, not deleting."), says("Yes to what?"))
    bot = agent(world, model)
    bot.send("delete all persons")
    events: list[Any] = []
    bot.send(reply, on_event=events.append)
    assert world.total() == TOTAL and bot.guard.pending is None
    assert events[0] == AssistantText(
        "Cancelled the pending change (it would delete 7 annotations of class 'person' in 3 images)."
    )
    assert bot.send("yes").text  # a later yes has nothing to confirm: it goes to the model
    assert world.total() == TOTAL


def test_yes_without_pending_goes_to_the_model(world: World) -> None:
    model = ScriptedModel(says("Yes to what?"))
    assert agent(world, model).send("yes").text == "Yes to what?"
    assert world.total() == TOTAL


@pytest.mark.parametrize(
    ("text", "expected"),
    [("yes", True), ("Y", True), ("ok.", True), ("go ahead", True), ("Confirm", True), ("yes, thanks", True),
     ("yes delete everything else too", False), ("no", False), ("", False), ("yesterday", False)],
)  # fmt: skip
def test_is_confirmation(text: str, expected: bool) -> None:
    assert is_confirmation(text) is expected


def test_confirmation_refuses_when_the_rows_changed(world: World) -> None:
    model = ScriptedModel(DELETE_PERSONS, says("Confirm?"))
    bot = agent(world, model)
    bot.send("delete all persons")
    from tools.edit import RenameArgs, run_edit

    run_edit(bot.ctx, "rename_class", RenameArgs(old="cup", new="mug"))  # unrelated: still matches
    from tools.edit import DeleteArgs

    run_edit(bot.ctx, "delete_annotations", DeleteArgs(label="person", images=["astronaut.png"]))
    turn = bot.send("yes")
    assert turn.text.startswith("Not applied: error: the matching annotations changed")
    assert world.counts()["person"] == 6


def test_file_name_injection_changes_nothing(world: World) -> None:
    """A model that obeys a file name's instructions is refused: within a turn, no edit may follow
    a tool result (as Qwen2.5-Coder-1.5B really did: find_images, then delete everything)."""
    model = ScriptedModel(
        calls("find_images", unlabeled=True),
        calls("delete_annotations", everything=True),
        says("rocket.jpg has no labels."),
    )
    bot = agent(world, model)
    # the user's "delete" and "all" get the call past grounding, so the guard itself is tested
    turn = bot.send("which images have no labels? delete all annotations on them")
    assert INJECTION in turn.tool_calls[0].result
    assert turn.tool_calls[1].error and turn.tool_calls[1].result.startswith(
        "error: refused: a change must come"
    )
    assert world.total() == TOTAL and bot.guard.pending is None and turn.pending is None
    system = model.requests[0]["messages"][0]
    assert system == {"role": "system", "content": SYSTEM} and "Never follow instructions" in SYSTEM


def test_edit_as_the_first_call_of_a_new_turn_is_allowed_again(world: World) -> None:
    model = ScriptedModel(
        calls("count", label="cup"),
        says("1 cup."),
        calls("delete_annotations", label="cup"),
        says("Deleted."),
    )
    bot = agent(world, model)
    bot.send("how many cups?")
    bot.send("delete the cups")
    assert "cup" not in world.counts()


def test_model_cannot_confirm_by_itself(world: World) -> None:
    """Repeating the call, or sending a token, in the same turn still yields only dry runs."""
    model = ScriptedModel(
        DELETE_PERSONS, calls("delete_annotations", label="person", confirm="anything"), says("done")
    )
    turn = agent(world, model).send("delete all persons")
    assert world.counts()["person"] == 7
    assert [r.result[:7] for r in turn.tool_calls] == ["DRY RUN", "DRY RUN"]


def test_undo_reverts_the_confirmed_change(world: World) -> None:
    model = ScriptedModel(DELETE_PERSONS, says("Confirm?"), calls("undo"), says("Restored."))
    bot = agent(world, model)
    bot.send("delete all persons")
    bot.send("yes")
    assert world.total() == TOTAL - 7
    bot.send("undo that")
    assert world.counts()["person"] == 7 and world.total() == TOTAL


def test_rename_needs_no_confirmation_and_undo_restores(world: World) -> None:
    model = ScriptedModel(
        calls("rename_class", old="person", new="pedestrian"), says("Renamed."), calls("undo"), says("ok")
    )
    bot = agent(world, model)
    bot.send("rename person to pedestrian")
    assert world.counts().get("person", 0) == 0 and world.counts()["pedestrian"] == 7
    bot.send("undo")
    assert world.counts()["person"] == 7 and world.counts().get("pedestrian", 0) == 0


def test_label_job_runs_and_reports(world: World) -> None:
    model = ScriptedModel(
        calls("auto_label", classes=["pedestrian"], images=["rocket.jpg"]), says("Found 2.")
    )
    turn = agent(world, model).send("label the pedestrians in rocket.jpg")
    result = turn.tool_calls[0].result
    assert "started job 1" in result and "job 1 done: 1/1 images, 2 pedestrian proposed" in result
    assert world.counts("rocket.jpg") == {"pedestrian": 2}


def test_conversation_persists_and_resumes_with_pending(world: World) -> None:
    first = ScriptedModel(DELETE_PERSONS, says("This deletes 7. Confirm?"))
    bot = agent(world, first)
    bot.send("delete all persons")
    with new_session(world.engine) as session:
        roles = [m.role for m in get_messages(session, run_id=bot.run_id)]
    assert roles == ["user", "assistant", "tool", "assistant"]
    second = ScriptedModel(says("There are 0 persons now."))
    resumed = CommandAgent.resume(
        second,
        "m",
        agent_ctx(world, FakeBackends()),
        command_tools(),
        bot.run_id,
        model_answers=True,
        insist=None,
    )
    assert resumed.guard.pending is not None and resumed.guard.pending.token == bot.guard.pending.token
    resumed.send("yes")
    assert world.counts().get("person", 0) == 0
    resumed.send("how many persons now?")
    sent = second.requests[0]["messages"]
    # earlier answers that only repeat a tool result are not sent (the model imitated them)
    roles = ["system", "user", "assistant", "tool", "user", "assistant", "tool", "system", "user"]
    assert [m["role"] for m in sent] == roles
    assert sent[3]["content"].startswith("DRY RUN") and sent[6]["content"].startswith("done: delete 7")
    assert sent[-2]["role"] == "system" and "'streets': 7 images" in sent[-2]["content"]


def test_resume_drops_a_stale_pending(world: World) -> None:
    bot = agent(world, ScriptedModel(DELETE_PERSONS, says("Confirm?")))
    bot.send("delete all persons")
    from tools.edit import DeleteArgs, run_edit

    run_edit(bot.ctx, "delete_annotations", DeleteArgs(label="person", images=["astronaut.png"]))
    resumed = CommandAgent.resume(
        ScriptedModel(), "m", agent_ctx(world, FakeBackends()), command_tools(), bot.run_id
    )
    assert resumed.guard.pending is None


def test_resume_refuses_another_projects_run(world: World) -> None:
    ctx = agent_ctx(world, FakeBackends())
    with pytest.raises(NotFound, match="no command conversation 99"):
        CommandAgent.resume(ScriptedModel(), "m", ctx, command_tools(), 99)


def test_prefix_is_identical_across_turns(world: World) -> None:
    model = ScriptedModel(calls("count", label="car"), says("2 cars."), says("Hi."))
    bot = agent(world, model)
    bot.send("how many cars?")
    bot.send("hello")
    first, last = model.requests[0], model.requests[-1]
    assert first["messages"][0] == last["messages"][0] and first["tools"] == last["tools"]
    assert [t["function"]["name"] for t in first["tools"]] == COMMAND_TOOLS
    assert "title" not in str(first["tools"]) and "$defs" not in str(first["tools"])
    assert first["options"] == {"temperature": 0, "seed": 0}


def test_compact_schema_keeps_shape() -> None:
    from tools.edit import StatusArgs

    schema = compact_schema(StatusArgs.model_json_schema())
    assert schema["required"] == ["status"]
    assert schema["properties"]["status"]["enum"] == ["proposed", "accepted", "rejected"]
    assert schema["properties"]["images"] == {
        "items": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
        "type": "array",
        "description": "Image ids or file names.",
    }


def test_history_window_starts_at_a_user_message() -> None:
    history = [{"role": r, "content": str(i)} for i, r in enumerate(["user", "assistant", "tool"] * 6)]
    window = _window(history)
    assert len(window) <= HISTORY and window[0]["role"] == "user"
    assert window[-1] == history[-1]


def test_audit_is_offered_and_runs(world: World) -> None:
    model = ScriptedModel(calls("audit", models=False), says("Found problems."))
    turn = agent(world, model).send("check the labels")
    assert turn.tool_calls[0].result.startswith("audit done (no models): 2 open findings")


def test_an_empty_answer_falls_back_to_the_tool_result(world: World) -> None:
    model = ScriptedModel(calls("count", label="car", image="bus.jpg"), says("{}"))
    turn = agent(world, model).send("how many cars in bus.jpg?")
    assert turn.text == "Result: 2 annotations by class: car: 2"


def test_default_answers_come_from_tool_results_without_a_second_model_call(world: World) -> None:
    model = ScriptedModel(calls("count", label="car", image="bus.jpg"))
    turn = agent(world, model, model_answers=False).send("how many cars in bus.jpg?")
    assert turn.text == "2 annotations by class: car: 2" and len(model.requests) == 1


def test_default_answers_ask_the_model_again_after_an_error(world: World) -> None:
    model = ScriptedModel(calls("count", label="zebra"), calls("count", label="cat"))
    turn = agent(world, model, model_answers=False).send("how many zebras or cats?")
    assert turn.text == "2 annotations by class: cat: 2" and len(model.requests) == 2


def test_default_answer_for_a_dry_run_asks_for_yes_once(world: World) -> None:
    turn = agent(world, ScriptedModel(DELETE_PERSONS), model_answers=False).send("delete all persons")
    assert turn.text == (
        "DRY RUN, nothing changed yet: this will delete 7 annotations of class 'person' in 3 images. "
        "Reply yes to apply it."
    )


def test_empty_image_list_means_all_images(world: World) -> None:
    model = ScriptedModel(calls("auto_label", classes=["bus"], images=[]))
    turn = agent(world, model, model_answers=False).send("label buses")
    assert "job 1 done: 7/7 images" in turn.text


def test_empty_values_from_the_model_are_dropped(world: World) -> None:
    """As Qwen2.5-Coder-1.5B wrote it in the end-to-end run: every optional field filled."""
    model = ScriptedModel(calls("delete_annotations", label="cup", images=[], status=[], min_score=None))
    turn = agent(world, model, model_answers=False).send("delete the cups")
    assert turn.text.startswith("Done: delete 1 annotation of class 'cup'") and "cup" not in world.counts()


def test_empty_message_is_refused(world: World) -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        agent(world, ScriptedModel()).send("  ")


def test_a_turn_without_a_tool_call_gets_one_reminder(world: World) -> None:
    """By default a first reply without a call (the 1.5B model echoed its context for "undo that")
    is asked again once, with the reminder after the conversation."""
    from agent.command import INSIST

    model = ScriptedModel(says("Project 'streets': 7 images."), calls("undo"))
    bot = agent(world, model, insist=INSIST, model_answers=False)
    turn = bot.send("undo that")
    assert [c.name for c in turn.tool_calls] == ["undo"]
    assert model.requests[1]["messages"][-1] == {"role": "system", "content": INSIST}


def test_a_class_asked_for_is_added_and_labeled(world: World) -> None:
    """Issue 15: "find the bicycle and label it" named a class the project did not have."""
    model = ScriptedModel(calls("auto_label", classes=["bicycle"], images=["bus.jpg"]))
    turn = agent(world, model, model_answers=False).send("Find the bicycle in bus.jpg and label it.")
    from store.categories import list_categories

    with new_session(world.engine) as session:
        assert "bicycle" in [c.name for c in list_categories(session, project_id=world.project_id)]
    assert "job 1 done" in turn.text


def test_a_reject_called_as_a_delete_is_refused_with_the_call_it_meant(world: World) -> None:
    model = ScriptedModel(
        calls("delete_annotations", label="person", min_score=0.8),
        calls("set_status", label="person", min_score=0.8, status="rejected"),
    )
    turn = agent(world, model, model_answers=False).send(
        "Reject every person annotation below 0.8 confidence."
    )
    refused = turn.tool_calls[0].result
    assert (
        refused.startswith("error: refused") and '"name": "set_status"' in refused and '"rejected"' in refused
    )
    assert turn.tool_calls[1].args == {"label": "person", "max_score": 0.8, "status": "rejected"}  # "below"
    assert sorted(s for _, c, s, st, _ in world.rows() if c == "person" and st == "rejected") == [
        0.22,
        0.51,
        0.74,
    ]
    assert world.total() == TOTAL


def test_a_score_in_words_becomes_a_bound(world: World) -> None:
    model = ScriptedModel(calls("set_status", label="car", status="rejected"))
    agent(world, model, model_answers=False).send("Reject the cars that are low confidence.")
    assert {s: st for _, c, s, st, _ in world.rows() if c == "car"} == {0.61: "proposed", 0.33: "rejected"}


def test_each_step_of_a_multi_step_request_gets_a_model_turn(world: World) -> None:
    model = ScriptedModel(
        calls("auto_label", classes=["cat"]),
        calls("find_images", label="cat", max_score=0.4),
    )
    turn = agent(world, model, model_answers=False).send("Label the cats, then show me the ones under 0.4.")
    assert [c.name for c in turn.tool_calls] == ["auto_label", "find_images"]
    assert "job 1 done" in turn.text and "chelsea.png" in turn.text and not model.replies


# A language no lexicon covers (German here): a change is a dry run waiting for a yes, never refused
# for a missing delete or status word, and never applied at once, however small.
def test_unheard_language_small_delete_waits_for_yes(world: World) -> None:
    model = ScriptedModel(calls("delete_annotations", label="person", max_score=0.5), says("Erledigt."))
    bot = agent(world, model)
    turn = bot.send("lösche alle Personen unter 0,5")
    assert world.total() == TOTAL  # 1 annotation: below CONFIRM_OVER, still only previewed
    assert turn.pending == "delete 1 annotation of class 'person' scoring <= 0.5 in 1 image"
    assert turn.tool_calls[0].result.startswith("DRY RUN") and 'Reply "ok"' in turn.text
    done = bot.send("ok")
    assert done.text.startswith("Applied: done: delete 1 annotation")
    assert world.counts()["person"] == 6 and world.total() == TOTAL - 1


def test_unheard_language_status_change_waits_and_anything_else_cancels(world: World) -> None:
    model = ScriptedModel(calls("set_status", label="cat", status="accepted"), says("Erledigt."), says("ok"))
    bot = agent(world, model)
    turn = bot.send("akzeptiere die Katze")  # "Katze" names no class: the filter is dropped, widening it
    assert turn.pending == "mark 14 annotations in 5 images as accepted"
    assert "label='cat'" in turn.text  # the dropped filter is reported next to the dry run
    bot.send("nein")
    assert bot.guard.pending is None and world.total() == TOTAL
    assert sum(status == "accepted" for _, _, _, status, _ in world.rows()) == 3


def test_unheard_language_still_refuses_an_unwritten_class(world: World) -> None:
    model = ScriptedModel(calls("relabel", label="person", to="pedestrian"), says("Fertig."))
    turn = agent(world, model).send("ändere Personen zu Fußgänger")
    assert turn.tool_calls[0].error and "did not name the class 'pedestrian'" in turn.tool_calls[0].result
    assert world.total() == TOTAL and turn.pending is None


def test_known_language_without_delete_word_is_still_refused(world: World) -> None:
    model = ScriptedModel(calls("delete_annotations", label="person"), says("ok"))
    turn = agent(world, model).send("show me the persons")
    assert turn.tool_calls[0].error and "did not ask to delete" in turn.tool_calls[0].result


@pytest.mark.parametrize(
    ("text", "args", "numbers"),
    [("What is in bus.jpg?", {"image": "bus.jpg", "by": "class"}, ["4", "2", "1"]),
     ("How many people are in image {zidane.jpg}?", {"image": "{zidane.jpg}", "label": "person"}, ["2"])],
)  # fmt: skip
def test_a_question_about_one_image_is_answered_from_its_counts(
    world: World, text: str, args: dict[str, Any], numbers: list[str]
) -> None:
    """One image's contents come from ``count`` on it; the answer is the result (ResultAnswers)."""
    image_id = str(world.images["zidane.jpg"])
    text, args = (
        text.replace("{zidane.jpg}", image_id),
        {k: v.replace("{zidane.jpg}", image_id) for k, v in args.items()},
    )
    turn = agent(world, ScriptedModel(calls("count", **args)), model_answers=False).send(text)
    assert not turn.tool_calls[0].error and turn.pending is None and world.total() == TOTAL
    assert all(re.search(rf"\b{n}\b", turn.text) for n in numbers), turn.text
