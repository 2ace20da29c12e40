"""Tool calls written as text: what counts as a call, and what is left for the user."""

from __future__ import annotations

import pytest

from agent.tool_call_recovery import RecoveredCall, recover_tool_calls

COUNT = RecoveredCall("count", {"label": "car"})


@pytest.mark.parametrize(
    ("text", "calls", "rest"),
    [
        ('```json\n{"name": "count", "arguments": {"label": "car"}}\n```', [COUNT], ""),
        (
            'Sure.\n```\n{"name": "count", "arguments": {"label": "car"}}\n```\nDone.',
            [COUNT],
            "Sure.\n\nDone.",
        ),
        ('{"name": "count", "arguments": {"label": "car"}}', [COUNT], ""),
        ('Calling {"name": "count", "parameters": {"label": "car"}} now', [COUNT], "Calling  now"),
        ('<tool_call>\n{"name": "count", "arguments": {"label": "car"}}\n</tool_call>', [COUNT], ""),
        ('<tool_call>{"name": "count", "arguments": {"label": "car"}}', [COUNT], ""),
        ('{"name": "count", "arguments": "{\\"label\\": \\"car\\"}"}', [COUNT], ""),
        ('{"type": "function", "function": {"name": "count", "arguments": {"label": "car"}}}', [COUNT], ""),
        ('{"tool": "count", "arguments": {"label": "car"}}', [COUNT], ""),
        ('{{"name": "count", "arguments": {"label": "car"}}}', [COUNT], ""),
        (
            '```json\n[{"name": "count", "arguments": {"label": "car"}},\n'
            ' {"name": "add", "arguments": {}}]\n```',
            [COUNT, RecoveredCall("add", {})],
            "",
        ),
        (
            '<tool_call>{"name": "count", "arguments": {"label": "car"}}</tool_call>\n'
            '<tool_call>{"name": "add", "arguments": null}</tool_call>',
            [COUNT, RecoveredCall("add", {})],
            "",
        ),
    ],
    ids=[
        "json-block",
        "fence-with-text",
        "bare",
        "parameters-key",
        "qwen-tags",
        "qwen-unclosed",
        "arguments-as-string",
        "openai-wrapper",
        "constrained-form",
        "double-braces",
        "list-in-block",
        "two-tagged",
    ],
)
def test_recovered(text: str, calls: list[RecoveredCall], rest: str) -> None:
    assert recover_tool_calls(text) == (calls, rest)


@pytest.mark.parametrize(
    "text",
    [
        "There are 7 cars.",
        '```json\n{"name": "Bus 12", "count": 3}\n```',
        '{"name": "count"}',
        '{"name": "count", "arguments": "not json"}',
        '{"name": 3, "arguments": {}}',
        '{"name": "count", "arguments": {"label": "car"',
    ],
    ids=[
        "prose",
        "data-json",
        "no-arguments",
        "bad-argument-string",
        "name-not-str",
        "truncated",
    ],
)
def test_not_a_call_is_left_alone(text: str) -> None:
    assert recover_tool_calls(text) == ([], text.strip())
