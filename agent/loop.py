"""The tool-calling loop: ask the model, run the tools it calls, feed results back, repeat.

Errors split by audience (see STYLE.md): a model's mistake (unknown tool, bad arguments, a tool
that raised ToolError) goes back to it as a tool message so it can correct itself; our failure
(LLM unreachable, a bug) raises. Running out of steps is an outcome, not an error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import ollama

from agent.events import AssistantText, EventSink, Final, ToolCall, ToolResult
from agent.llm import LLMUnavailable
from agent.tool_call_recovery import recover_tool_calls
from tools.registry import Registry, ToolContext, ToolError

CONSTRAINED_REPLY_FORM = (
    'Reply with JSON only: {"tool": <tool name>, "arguments": {...}} to call a tool, '
    'or {"answer": <text>} to answer the user once a tool gave you the facts.'
)
"""Append to the system prompt in constrained mode: the schema forces the form, this says what it
means (without it Qwen2.5-Coder-1.5B answered {"answer": "{\"count\": 10}"} without calling)."""


class ChatClient(Protocol):
    """What the loop needs of ``ollama.Client`` (tests pass a scripted fake)."""

    def chat(
        self,
        model: str = "",
        messages: Sequence[Mapping[str, Any]] | None = None,
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        format: str | Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Any: ...


@dataclass(frozen=True)
class CallRecord:
    name: str
    args: dict[str, Any]
    result: str
    error: bool


@dataclass
class LoopResult:
    text: str
    steps: int
    hit_step_limit: bool
    tool_calls: list[CallRecord] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)


def constrained_schema(tools: list[dict[str, Any]]) -> dict[str, Any]:
    """A JSON schema for ``format=``: one tool call (``{"tool", "arguments"}``) or ``{"answer"}``.

    For weak models: every tool gets its own branch with its real argument schema, so decoding
    can only produce a known tool with well-formed arguments. The system prompt should include
    :data:`CONSTRAINED_REPLY_FORM`.
    """
    defs: dict[str, Any] = {}
    branches = []
    for tool in tools:
        fn = tool["function"]
        params = dict(fn["parameters"])
        defs.update(params.pop("$defs", {}))
        branches.append(_object({"tool": {"const": fn["name"]}, "arguments": params}))
    branches.append(_object({"answer": {"type": "string"}}))
    return {"anyOf": branches, **({"$defs": defs} if defs else {})}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def run_loop(
    client: ChatClient,
    model: str,
    messages: list[dict[str, Any]],
    registry: Registry,
    ctx: ToolContext,
    *,
    max_steps: int = 8,
    constrained: bool = False,
    options: Mapping[str, Any] | None = None,
    on_event: EventSink | None = None,
    prepare: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None,
    insist: str | None = None,
) -> LoopResult:
    """Run until the model answers without tool calls or ``max_steps`` model calls were made.

    ``prepare(tool, args)`` may rewrite a call's arguments before it runs (the command agent drops
    filters the user never named); the history and events then show the call as it ran. A
    ``ToolError`` from it refuses the call: the model gets the message, as for a tool's own error.
    ``insist``: when the first reply calls no tool, ask once more with this reminder appended (for
    agents where every request maps to a tool; a 1.5B model sometimes just echoes its context).
    A model that repeats a call that already failed ends the loop with that error as the answer.

    Raises:
        LLMUnavailable: the model could not be reached or refused the request.
    """
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    emit = on_event or (lambda event: None)
    history = list(messages)
    tools = registry.schemas()
    fmt = constrained_schema(tools) if constrained else None
    records: list[CallRecord] = []
    failed: dict[str, str] = {}  # call key -> its error, to notice a model repeating itself
    said = ""
    for step in range(1, max_steps + 1):
        content, calls = _reply(_chat(client, model, history, tools, fmt, options), constrained, registry)
        if not calls and insist is not None and step == 1:
            reminded = [*history, {"role": "system", "content": insist}]
            reply = _chat(client, model, reminded, tools, fmt, options)
            content, calls = _reply(reply, constrained, registry)
        refused: dict[int, str] = {}
        if prepare is not None:
            prepared = []
            for i, (n, a) in enumerate(calls):
                try:
                    prepared.append((n, prepare(n, _args(a))))
                except ToolError as exc:
                    refused[i] = f"error: {exc}"
                    prepared.append((n, _args(a)))
            calls = prepared
        if not calls:
            history.append({"role": "assistant", "content": content})
            return _finish(emit, LoopResult(content, step, False, records, history))
        keys = [_key(n, a) for n, a in calls]
        if all(k in failed for k in keys):  # the same failing call again: greedy decoding will loop
            text = f"I could not do that: {failed[keys[-1]].removeprefix('error: ')}"
            return _finish(emit, LoopResult(text, step, False, records, history))
        history.append(
            {
                "role": "assistant",
                "content": content,
                "tool_calls": [{"function": {"name": n, "arguments": _args(a)}} for n, a in calls],
            }
        )
        if content:
            said = content
            emit(AssistantText(content))
        for i, (name, raw) in enumerate(calls):
            record = _run_tool(registry, ctx, name, raw, emit, refused.get(i))
            records.append(record)
            history.append({"role": "tool", "tool_name": name, "content": record.result})
            if record.error:
                failed[keys[i]] = record.result
    text = said or f"Stopped after {max_steps} steps without a final answer."
    return _finish(emit, LoopResult(text, max_steps, True, records, history))


def _chat(
    client: ChatClient,
    model: str,
    history: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    fmt: dict[str, Any] | None,
    options: Mapping[str, Any] | None,
) -> dict[str, Any]:
    try:
        response = client.chat(model, history, tools=tools, format=fmt, options=options)
    except (ollama.ResponseError, ConnectionError, httpx.HTTPError) as exc:
        raise LLMUnavailable(f"the LLM {model!r} is unavailable: {exc}") from exc
    message = response["message"]
    return message.model_dump(exclude_none=True) if hasattr(message, "model_dump") else dict(message)


def _reply(
    message: dict[str, Any], constrained: bool, registry: Registry
) -> tuple[str, list[tuple[str, Any]]]:
    """The text of a reply and its tool calls: native ones, else ones written as text."""
    content = message.get("content") or ""
    calls = [(c["function"]["name"], c["function"].get("arguments")) for c in message.get("tool_calls") or []]
    if calls:
        return content, calls
    recovered, content = recover_tool_calls(content)
    if constrained and not recovered:  # weak models also write a call inside the answer
        recovered, content = recover_tool_calls(_answer(content))
    if not recovered and (bare := _bare_call(content, registry.names())) is not None:
        return "", [bare]
    return content, [(c.name, c.arguments) for c in recovered]


def _bare_call(content: str, names: list[str]) -> tuple[str, dict[str, Any]] | None:
    """``undo`` or ``count {"label": "car"}`` as the whole reply: a call written as plain text."""
    match = re.fullmatch(r"\s*`?([A-Za-z_]\w*)`?\s*(\(\s*\)|\{.*\})?\s*", content, re.DOTALL)
    if match is None or match.group(1) not in names:
        return None
    raw = match.group(2) or "{}"
    return match.group(1), _args(raw if raw.startswith("{") else "{}")


def _key(name: str, raw: Any) -> str:
    return json.dumps([name, _args(raw)], sort_keys=True, default=str)


def _args(raw: Any) -> dict[str, Any]:
    """Arguments as a dict for history and events (validation happens in Tool.parse)."""
    if isinstance(raw, Mapping):
        return dict(raw)
    if isinstance(raw, str):
        try:
            value = json.loads(raw or "{}")
        except json.JSONDecodeError:
            return {}
        return value if isinstance(value, dict) else {}
    return {}


def _answer(content: str) -> str:
    """The ``answer`` of a constrained reply; the raw text when the model broke the form."""
    try:
        value = json.loads(content)
    except json.JSONDecodeError:
        return content
    return str(value["answer"]) if isinstance(value, dict) and "answer" in value else content


def _run_tool(
    registry: Registry, ctx: ToolContext, name: str, raw: Any, emit: EventSink, refusal: str | None = None
) -> CallRecord:
    args = _args(raw)
    emit(ToolCall(name, args))
    if refusal is not None:
        emit(ToolResult(name, refusal, True))
        return CallRecord(name, args, refusal, True)
    try:
        text, error = registry.get(name)(ctx, raw if isinstance(raw, str) else args).text(), False
    except ToolError as exc:
        text, error = f"error: {exc}", True
    emit(ToolResult(name, text, error))
    return CallRecord(name, args, text, error)


def _finish(emit: EventSink, result: LoopResult) -> LoopResult:
    emit(Final(result.text, result.steps, result.hit_step_limit))
    return result
