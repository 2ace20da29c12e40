"""Translation between Ollama's chat shapes and the OpenAI-style ones llama.cpp's server speaks.

Pure functions, so the endpoint (:mod:`agent.ollama_api`) stays about HTTP and streaming.
"""

from __future__ import annotations

import json
from typing import Any

_OPTIONS = {  # Ollama option -> llama.cpp request field
    "temperature": "temperature",
    "top_k": "top_k",
    "top_p": "top_p",
    "min_p": "min_p",
    "typical_p": "typical_p",
    "seed": "seed",
    "stop": "stop",
    "repeat_penalty": "repeat_penalty",
    "repeat_last_n": "repeat_last_n",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}
_ROLES = {"system", "user", "assistant", "tool"}


def to_openai_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ollama chat messages -> OpenAI ones; tool results are paired with their call by tool_name.

    Call ids are derived from message positions, so the same history always renders the same
    prompt bytes (llama.cpp's prompt cache needs that).
    """
    out: list[dict[str, Any]] = []
    pending: list[tuple[str, str]] = []  # (call id, tool name) of calls without a result yet
    for i, msg in enumerate(messages):
        role = msg.get("role")
        if role not in _ROLES:
            raise ValueError(f"message {i}: role must be one of {sorted(_ROLES)}, got {role!r}")
        if msg.get("images"):
            raise ValueError(f"message {i}: images are not supported by the embedded model")
        content = msg.get("content") or ""
        if role == "assistant" and msg.get("tool_calls"):
            calls = []
            for j, call in enumerate(msg["tool_calls"]):
                fn = call.get("function") or {}
                args = fn.get("arguments") or {}
                calls.append(
                    {
                        "id": f"call_{i}_{j}",
                        "type": "function",
                        "function": {
                            "name": fn.get("name", ""),
                            "arguments": args if isinstance(args, str) else json.dumps(args),
                        },
                    }
                )
            pending = [(c["id"], c["function"]["name"]) for c in calls]
            out.append({"role": "assistant", "content": content, "tool_calls": calls})
        elif role == "tool":
            name = msg.get("tool_name") or msg.get("name")
            tool_msg: dict[str, Any] = {"role": "tool", "content": content}
            match = next((k for k, (_, n) in enumerate(pending) if n == name), 0 if pending else None)
            if match is not None:
                call_id, call_name = pending.pop(match)
                tool_msg["tool_call_id"] = call_id
                name = name or call_name
            if name:
                tool_msg["name"] = name
            out.append(tool_msg)
        else:
            out.append({"role": role, "content": content})
    return out


def to_openai_request(body: dict[str, Any]) -> dict[str, Any]:
    """Translate the parts of an Ollama request llama.cpp understands; reject the rest clearly.

    ``options.num_ctx`` is not a request field for llama.cpp: the caller reloads the model for it.
    """
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise ValueError(f"messages must be a list, got {type(messages).__name__}")
    request: dict[str, Any] = {"messages": to_openai_messages(messages)}
    if body.get("tools"):
        request["tools"] = body["tools"]
    fmt = body.get("format")
    if fmt == "json":
        request["response_format"] = {"type": "json_object"}
    elif isinstance(fmt, dict):
        request["json_schema"] = fmt
    elif fmt not in (None, ""):
        raise ValueError(f'format must be "json" or a JSON schema object, got {fmt!r}')
    options = body.get("options") or {}
    for key, field in _OPTIONS.items():
        if options.get(key) is not None:
            request[field] = options[key]
    if isinstance(options.get("num_predict"), int) and options["num_predict"] >= 0:
        request["max_tokens"] = options["num_predict"]
    return request


def to_ollama_message(message: dict[str, Any]) -> dict[str, Any]:
    """OpenAI assistant message -> Ollama's, tool call arguments as dicts."""
    out: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
    if message.get("reasoning_content"):
        out["thinking"] = message["reasoning_content"]
    calls = [
        ollama_call(c["function"]["name"], c["function"].get("arguments"))
        for c in message.get("tool_calls") or []
    ]
    if calls:
        out["tool_calls"] = calls
    return out


def ollama_call(name: str, arguments: str | dict[str, Any] | None) -> dict[str, Any]:
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments or "{}")
        except json.JSONDecodeError:
            arguments = {}  # the loop's argument validation tells the model what is missing
    return {"function": {"name": name, "arguments": arguments if isinstance(arguments, dict) else {}}}
