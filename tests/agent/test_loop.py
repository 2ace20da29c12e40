"""The tool-calling loop against a scripted model: who sees which error, and when it stops."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import ollama
import pytest

from agent.events import AssistantText, Final, ToolCall, ToolResult
from agent.llm import LLMUnavailable
from agent.loop import CONSTRAINED_REPLY_FORM, constrained_schema, run_loop
from tests.agent.conftest import CARS, ScriptedModel, call
from tools.registry import Registry, Tool

COUNT_CARS = ("count_annotations", {"label": "car"}, False)
ASK = [{"role": "user", "content": "How many cars are there?"}]


def run(model: ScriptedModel, registry: Any, ctx: Any, **kwargs: Any) -> tuple[Any, list[Any]]:
    events: list[Any] = []
    result = run_loop(model, "m", list(ASK), registry, ctx, on_event=events.append, **kwargs)
    return result, events


def tool_messages(result: Any) -> list[dict[str, Any]]:
    return [m for m in result.messages if m["role"] == "tool"]


def test_plain_answer(registry, ctx) -> None:
    model = ScriptedModel({"content": "Hello."})
    result, events = run(model, registry, ctx)
    assert (result.text, result.steps, result.hit_step_limit, result.tool_calls) == ("Hello.", 1, False, [])
    assert events == [Final("Hello.", 1, False)]
    assert model.requests[0]["tools"] == registry.schemas()
    assert model.requests[0]["format"] is None


def test_one_tool_call_then_answer(registry, ctx) -> None:
    model = ScriptedModel(
        {"content": "", "tool_calls": [call("count_annotations", label="car")]},
        {"content": f"There are {CARS} cars."},
    )
    result, events = run(model, registry, ctx)
    assert result.text == f"There are {CARS} cars." and result.steps == 2
    assert [(r.name, r.args, r.error) for r in result.tool_calls] == [
        ("count_annotations", {"label": "car"}, False)
    ]
    assert json.loads(result.tool_calls[0].result) == {"label": "car", "count": CARS}
    fed_back = model.requests[1]["messages"]
    assert fed_back[-1] == {
        "role": "tool",
        "tool_name": "count_annotations",
        "content": result.tool_calls[0].result,
    }
    assert fed_back[-2]["tool_calls"] == [call("count_annotations", label="car")]
    assert events == [
        ToolCall("count_annotations", {"label": "car"}),
        ToolResult("count_annotations", result.tool_calls[0].result, False),
        Final(result.text, 2, False),
    ]


@pytest.mark.parametrize(
    ("bad_call", "expected_error"),
    [
        (call("add", a=1), "invalid arguments for add: b: Field required"),
        (call("add", a="one", b=2), "invalid arguments for add: a:"),
        (call("subtract", a=1, b=2), "unknown tool 'subtract'; available: add, count_annotations"),
        (call("count_annotations", label="zebra"), "unknown label 'zebra'"),
    ],
    ids=["missing-arg", "wrong-type", "unknown-tool", "tool-error"],
)
def test_model_mistakes_go_back_to_the_model(registry, ctx, bad_call, expected_error) -> None:
    model = ScriptedModel(
        {"content": "", "tool_calls": [bad_call]},
        {"content": "", "tool_calls": [call("add", a=1, b=2)]},
        {"content": "It is 3."},
    )
    result, events = run(model, registry, ctx)
    first, second = result.tool_calls
    assert first.error and first.result.startswith("error: ") and expected_error in first.result
    assert (second.error, json.loads(second.result)) == (False, {"value": 3.0})
    assert result.text == "It is 3." and result.steps == 3 and not result.hit_step_limit
    error_msg = model.requests[1]["messages"][-1]
    assert error_msg["role"] == "tool" and error_msg["tool_name"] == bad_call["function"]["name"]
    assert error_msg["content"] == first.result
    assert ToolResult(bad_call["function"]["name"], first.result, True) in events


def test_step_limit_is_a_result_not_an_exception(registry, ctx) -> None:
    looping = {"content": "Counting again.", "tool_calls": [call("count_annotations", label="car")]}
    model = ScriptedModel(*[looping] * 3)
    result, events = run(model, registry, ctx, max_steps=3)
    assert result.hit_step_limit and result.steps == 3 and len(result.tool_calls) == 3
    assert result.text == "Counting again."
    assert events[-1] == Final("Counting again.", 3, True)
    assert events.count(AssistantText("Counting again.")) == 3


def test_step_limit_without_any_text(registry, ctx) -> None:
    model = ScriptedModel({"content": "", "tool_calls": [call("add", a=1, b=1)]})
    result, _ = run(model, registry, ctx, max_steps=1)
    assert result.hit_step_limit and result.text == "Stopped after 1 steps without a final answer."


def test_max_steps_must_be_positive(registry, ctx) -> None:
    with pytest.raises(ValueError, match="max_steps must be >= 1, got 0"):
        run(ScriptedModel(), registry, ctx, max_steps=0)


@pytest.mark.parametrize(
    "failure",
    [
        ConnectionError("Failed to connect to Ollama."),
        ollama.ResponseError("model 'm' not found", 404),
        httpx.ReadTimeout("timed out"),
    ],
    ids=["connect", "response-error", "timeout"],
)
def test_llm_down_raises_llm_unavailable(registry, ctx, failure) -> None:
    with pytest.raises(LLMUnavailable, match="the LLM 'm' is unavailable") as info:
        run(ScriptedModel(failure), registry, ctx)
    assert info.value.__cause__ is failure


def test_a_bug_in_a_tool_propagates(registry, ctx) -> None:
    def broken(ctx: Any, args: Any) -> Any:
        raise KeyError("bug")

    buggy = Registry([Tool("add", "Add two numbers.", registry.get("add").args, broken)])
    model = ScriptedModel({"content": "", "tool_calls": [call("add", a=1, b=2)]})
    with pytest.raises(KeyError, match="bug"):
        run(model, buggy, ctx)


@pytest.mark.parametrize(
    "text",
    [
        'I will count them.\n```json\n{"name": "count_annotations", "arguments": {"label": "car"}}\n```',
        '{"name": "count_annotations", "arguments": {"label": "car"}}',
        '<tool_call>\n{"name": "count_annotations", "arguments": {"label": "car"}}\n</tool_call>',
    ],
    ids=["json-block", "bare-json", "qwen-tags"],
)
def test_tool_calls_written_as_text_are_recovered(registry, ctx, text) -> None:
    model = ScriptedModel({"content": text}, {"content": f"{CARS} cars."})
    result, events = run(model, registry, ctx)
    assert [(r.name, r.args, r.error) for r in result.tool_calls] == [
        ("count_annotations", {"label": "car"}, False)
    ]
    assert result.text == f"{CARS} cars."
    assistant = model.requests[1]["messages"][-2]
    assert assistant["tool_calls"] == [call("count_annotations", label="car")]
    assert "count_annotations" not in assistant["content"]
    assert (AssistantText("I will count them.") in events) == text.startswith("I will")


@pytest.mark.parametrize(
    "reply",
    [
        {"tool": "count_annotations", "arguments": {"label": "car"}},
        {"answer": json.dumps({"name": "count_annotations", "arguments": {"label": "car"}})},
    ],
    ids=["tool-form", "call-inside-answer"],
)
def test_constrained_mode_sends_a_schema_and_unwraps_the_answer(registry, ctx, reply) -> None:
    answer = {"content": json.dumps({"answer": f"{CARS} cars."})}
    model = ScriptedModel({"content": json.dumps(reply)}, answer)
    result, _ = run(model, registry, ctx, constrained=True)
    assert result.text == f"{CARS} cars." and result.tool_calls[0].args == {"label": "car"}
    schema = model.requests[0]["format"]
    assert schema == constrained_schema(registry.schemas())
    tools = [branch["properties"].get("tool", {}).get("const") for branch in schema["anyOf"]]
    assert tools == ["count_annotations", "add", None]
    assert schema["anyOf"][1]["properties"]["arguments"]["required"] == ["a", "b"]


@pytest.mark.slow
@pytest.mark.parametrize("constrained", [False, True], ids=["free", "constrained"])
def test_qwen_counts_cars_with_the_right_tool(qwen: Any, registry: Any, ctx: Any, constrained: bool) -> None:
    """The default model, on the real runtime, picks the tool, passes the label and uses the result."""
    system = "You help label images. Use the tools to answer, then answer the user in one short sentence."
    if constrained:
        system = f"You help label images. {CONSTRAINED_REPLY_FORM}"
    events: list[tuple[float, Any]] = []
    started = time.perf_counter()
    result = run_loop(
        qwen.client,
        qwen.model,
        [{"role": "system", "content": system}, {"role": "user", "content": "How many cars are there?"}],
        registry,
        ctx,
        max_steps=4,
        constrained=constrained,
        options={"temperature": 0, "seed": 1, "num_predict": 128},
        on_event=lambda event: events.append((time.perf_counter() - started, event)),
    )
    first_call = next(t for t, e in events if isinstance(e, ToolCall))
    answered = events[-1][0]
    print(f"\nqwen {constrained=}: first call {first_call:.1f}s, answer {answered:.1f}s: {result.text!r}")
    assert [(r.name, r.args) for r in result.tool_calls if not r.error][:1] == [COUNT_CARS[:2]]
    assert not result.hit_step_limit and str(CARS) in result.text


def test_prepare_rewrites_a_call_and_its_history(registry, ctx) -> None:
    """The call runs as prepared, and the history and events show it that way."""
    model = ScriptedModel(
        {"content": "", "tool_calls": [call("count_annotations", label="car", status="all")]},
        {"content": "7 cars."},
    )
    seen: list[tuple[str, dict[str, Any]]] = []

    def prepare(name: str, args: dict[str, Any]) -> dict[str, Any]:
        seen.append((name, args))
        return {k: v for k, v in args.items() if k != "status"}

    result, events = run(model, registry, ctx, prepare=prepare)
    assert seen == [("count_annotations", {"label": "car", "status": "all"})]
    assert [(r.name, r.args, r.error) for r in result.tool_calls] == [COUNT_CARS]
    assert model.requests[1]["messages"][-2]["tool_calls"] == [call("count_annotations", label="car")]
    assert ToolCall("count_annotations", {"label": "car"}) in events


def test_prepare_can_refuse_a_call(registry, ctx) -> None:
    """A ToolError from prepare goes back to the model like a tool's own error; nothing runs."""
    from tools.registry import ToolError

    model = ScriptedModel(
        {"content": "", "tool_calls": [call("count_annotations", label="zebra")]},
        {"content": "", "tool_calls": [call("count_annotations", label="car")]},
        {"content": "7 cars."},
    )

    def prepare(name: str, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("label") == "zebra":
            raise ToolError("the user did not name 'zebra'")
        return args

    result, _ = run(model, registry, ctx, prepare=prepare)
    first, second = result.tool_calls
    assert first.error and first.result == "error: the user did not name 'zebra'"
    assert (second.name, second.args, second.error) == COUNT_CARS
    assert model.requests[1]["messages"][-1]["content"] == "error: the user did not name 'zebra'"


@pytest.mark.parametrize("text", ["count_annotations", "`count_annotations`", 'count_annotations {"a": 1}'])
def test_a_tool_name_written_as_the_whole_reply_is_a_call(registry, ctx, text: str) -> None:
    """Qwen2.5-Coder-1.5B answered "undo that" with the text "undo"."""
    model = ScriptedModel({"content": text}, {"content": "done"})
    result, _ = run(model, registry, ctx)
    assert [r.name for r in result.tool_calls] == ["count_annotations"]
    plain, _ = run(ScriptedModel({"content": "count the cars"}), registry, ctx)
    assert plain.tool_calls == [] and plain.text == "count the cars"


def test_a_repeated_failing_call_ends_the_loop(registry, ctx) -> None:
    """Greedy decoding repeats a failing call word for word; the loop stops instead of looping."""
    zebra = {"content": "", "tool_calls": [call("count_annotations", label="zebra")]}
    model = ScriptedModel(zebra, zebra)
    result, _ = run(model, registry, ctx, max_steps=8)
    assert len(model.requests) == 2 and len(result.tool_calls) == 1 and not result.hit_step_limit
    assert result.text == "I could not do that: unknown label 'zebra'; known: car, person"


def test_insist_asks_again_once_when_no_tool_was_called(registry, ctx) -> None:
    model = ScriptedModel(
        {"content": "Project 'streets': 7 images."},  # an echo of the context, seen for real
        {"content": "", "tool_calls": [call("count_annotations", label="car")]},
        {"content": "7 cars."},
    )
    result, _ = run(model, registry, ctx, insist="Call a tool.")
    assert model.requests[1]["messages"][-1] == {"role": "system", "content": "Call a tool."}
    assert [r.name for r in result.tool_calls] == ["count_annotations"] and result.text == "7 cars."
    assert {"role": "system", "content": "Call a tool."} not in result.messages  # not kept in history
    chat = ScriptedModel({"content": "Hello."}, {"content": "Hello again."})
    answer, _ = run(chat, registry, ctx, insist="Call a tool.")
    assert answer.text == "Hello again." and len(chat.requests) == 2  # asked once, then accepted
