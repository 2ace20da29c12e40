"""Tool calls that a model wrote as text instead of native calls.

Small models (Qwen2.5-Coder 1.5B above all) often answer with a call as JSON text: a ```json
block, a bare ``{"name": ..., "arguments": ...}`` object, or Qwen's ``<tool_call>...</tool_call>``
form that the chat template parser missed. We recover those so the loop can run them. An object
counts as a call only when it has a name and an ``arguments``/``parameters`` member, so ordinary
JSON in an answer is left alone.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_FENCED = re.compile(r"```[ \t]*(?:json|tool_call|tool_code)?[ \t]*\n?(.*?)```", re.DOTALL | re.IGNORECASE)
_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class RecoveredCall:
    name: str
    arguments: dict[str, Any]


def _json_values(text: str) -> list[Any]:
    """Successive JSON values at the start of ``text`` (whitespace between them)."""
    values: list[Any] = []
    pos = 0
    while (pos := len(text) - len(text[pos:].lstrip())) < len(text):
        try:
            value, pos = _DECODER.raw_decode(text, pos)
        except json.JSONDecodeError:
            break
        values.append(value)
    return values


def _as_calls(value: Any) -> list[RecoveredCall]:
    """Calls in a decoded value: one call object, an OpenAI-style wrapper, or a list of those."""
    if isinstance(value, list):
        calls = [call for item in value for call in _as_calls(item)]
        return calls if len(calls) == len(value) else []
    if not isinstance(value, dict):
        return []
    if isinstance(value.get("function"), dict):
        return _as_calls(value["function"])
    name = value.get("name", value.get("tool"))
    key = next((k for k in ("arguments", "parameters") if k in value), None)
    if not isinstance(name, str) or not name or key is None:
        return []
    args = value[key]
    if isinstance(args, str):
        try:
            args = json.loads(args or "{}")
        except json.JSONDecodeError:
            return []
    if args is None:
        args = {}
    return [RecoveredCall(name, args)] if isinstance(args, dict) else []


def recover_tool_calls(text: str) -> tuple[list[RecoveredCall], str]:
    """Return the calls written in ``text`` and the text left once they are cut out.

    Tagged and fenced forms are tried first; bare objects only when neither holds a call.
    """
    calls: list[RecoveredCall] = []
    spans: list[tuple[int, int]] = []
    for pattern in (_TAGGED, _FENCED):
        for match in pattern.finditer(text):
            found = [c for v in _json_values(match.group(1)) for c in _as_calls(v)]
            if found and not any(s <= match.start() < e for s, e in spans):
                calls.extend(found)
                spans.append(match.span())
    if not calls:
        pos = 0
        while (pos := _next_start(text, pos)) >= 0:
            try:
                value, end = _DECODER.raw_decode(text, pos)
            except json.JSONDecodeError:
                pos += 1
                continue
            found = _as_calls(value)
            if found:
                calls.extend(found)
                spans.append((pos, end))
            pos = end if found else pos + 1
    rest = text
    for start, end in sorted(spans, reverse=True):
        rest = rest[:start] + rest[end:]
    rest = rest.strip()
    if spans and not rest.strip("{}[]`\n\t "):  # Qwen sometimes doubles the braces: {{...}}
        rest = ""
    return calls, rest


def _next_start(text: str, pos: int) -> int:
    starts = [i for i in (text.find("{", pos), text.find("[", pos)) if i >= 0]
    return min(starts) if starts else -1
