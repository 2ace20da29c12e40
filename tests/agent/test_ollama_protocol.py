"""Ollama <-> OpenAI chat shapes: pairing tool results with calls, stable prompt bytes, refusals."""

from __future__ import annotations

from typing import Any

import pytest

from agent.ollama_protocol import ollama_call, to_ollama_message, to_openai_messages, to_openai_request


def test_tool_results_are_paired_with_their_calls_by_name() -> None:
    history = [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"function": {"name": "add", "arguments": {"a": 1, "b": 2}}},
                {"function": {"name": "count", "arguments": {"label": "car"}}},
            ],
        },
        {"role": "tool", "tool_name": "count", "content": "7"},
        {"role": "tool", "tool_name": "add", "content": "3"},
    ]
    out = to_openai_messages(history)
    assert out[1]["tool_calls"][0] == {
        "id": "call_1_0",
        "type": "function",
        "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'},
    }
    assert [(m["tool_call_id"], m["name"]) for m in out[2:]] == [("call_1_1", "count"), ("call_1_0", "add")]
    assert to_openai_messages(history) == out  # same history, same prompt bytes


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"role": "robot", "content": "x"}, "message 0: role must be one of"),
        ({"role": "user", "content": "x", "images": ["aGk="]}, "images are not supported"),
    ],
)
def test_bad_messages_are_refused(message: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        to_openai_messages([message])


def test_request_options_and_format() -> None:
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [],
        "format": {"type": "object"},
        "options": {"temperature": 0, "seed": 3, "num_predict": 16, "num_ctx": 4096, "num_thread": 8},
    }
    request = to_openai_request(body)
    assert request == {
        "messages": [{"role": "user", "content": "hi"}],
        "json_schema": {"type": "object"},
        "temperature": 0,
        "seed": 3,
        "max_tokens": 16,
    }
    assert to_openai_request({**body, "format": "json"})["response_format"] == {"type": "json_object"}
    assert "max_tokens" not in to_openai_request({**body, "options": {"num_predict": -1}})
    with pytest.raises(ValueError, match="messages must be a list, got str"):
        to_openai_request({"messages": "hi"})


def test_reply_tool_calls_become_ollama_calls() -> None:
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "x", "type": "function", "function": {"name": "add", "arguments": '{"a": 1}'}}],
    }
    assert to_ollama_message(message) == {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"function": {"name": "add", "arguments": {"a": 1}}}],
    }
    assert ollama_call("add", "not json") == {"function": {"name": "add", "arguments": {}}}
