"""The embedded Ollama-protocol endpoint, driven by the official ``ollama`` client.

Everything but the pure translation tests runs the real llama.cpp runtime (xllamacpp) on
SmolLM2-135M, which is too small to pick tools well but exercises the whole path quickly.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import ollama
import pytest

from agent.embedded_llm import EmbeddedLLMError
from agent.llm import warm_up
from agent.ollama_api import OLLAMA_PROTOCOL_VERSION, check_bind_host, ndjson_stream

MODEL = "smollm2:135m"
GREEDY = {"temperature": 0, "seed": 7, "num_predict": 8}


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_hosts_are_allowed(host: str) -> None:
    check_bind_host(host, allow_network=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::", "example.org"])
def test_network_hosts_need_allow_network(host: str) -> None:
    with pytest.raises(ValueError, match="expected a loopback address.*--allow-network"):
        check_bind_host(host, allow_network=False)
    check_bind_host(host, allow_network=True)


@pytest.fixture(scope="module")
def client(smollm: Any) -> ollama.Client:
    return smollm.client


def test_version_and_root(smollm: Any) -> None:
    assert httpx.get(f"{smollm.host}/api/version").json() == {"version": OLLAMA_PROTOCOL_VERSION}
    assert httpx.get(f"{smollm.host}/").text == "Ollama is running"


def test_tags_list_the_loaded_model(client: ollama.Client, smollm: Any) -> None:
    (entry,) = client.list().models
    assert entry.model == MODEL
    assert entry.size == smollm.embedded.path.stat().st_size
    assert entry.details.format == "gguf" and entry.details.parameter_size == "135M"
    assert entry.details.quantization_level == "Q4_1"
    assert len(entry.digest) == 64


def test_show_and_ps(client: ollama.Client) -> None:
    shown = client.show(MODEL)
    assert "completion" in shown.capabilities
    assert shown.modelinfo["general.parameter_count"] == 134_515_008
    assert "<|im_start|>" in shown.template
    (running,) = client.ps().models
    assert running.model == MODEL


def test_unknown_model_is_a_404(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as info:
        client.chat("llama9:1t", [{"role": "user", "content": "hi"}])
    assert info.value.status_code == 404 and "model 'llama9:1t' not found" in info.value.error


def test_bad_request_is_a_400(smollm: Any) -> None:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "format": "yaml",
        "stream": False,
    }
    reply = httpx.post(f"{smollm.host}/api/chat", json=body)
    assert reply.status_code == 400 and "format must be" in reply.json()["error"]


def test_chat_non_streaming_and_streaming_agree(client: ollama.Client) -> None:
    ask = [{"role": "user", "content": "Name a colour."}]
    whole = client.chat(MODEL, ask, options=GREEDY)
    assert whole.done and whole.done_reason in {"stop", "length"}
    assert whole.message.role == "assistant" and whole.message.content.strip()
    assert 0 < whole.eval_count <= GREEDY["num_predict"] and whole.prompt_eval_count > 0
    parts = list(client.chat(MODEL, ask, stream=True, options=GREEDY))
    assert len(parts) >= 2 and parts[-1].done and not any(p.done for p in parts[:-1])
    assert "".join(p.message.content for p in parts) == whole.message.content
    assert parts[-1].eval_count == whole.eval_count


def test_every_request_reports_its_timings(client: ollama.Client, smollm: Any) -> None:
    seen: list[dict[str, Any]] = []
    smollm.embedded.on_timings = seen.append
    try:
        ask = [{"role": "user", "content": "Name a fruit."}]
        whole = client.chat(MODEL, ask, options=GREEDY)
        list(client.chat(MODEL, ask, stream=True, options=GREEDY))
    finally:
        smollm.embedded.on_timings = None
    assert len(seen) == 2, "one report per request, streamed or not"
    assert seen[0]["predicted_n"] == whole.eval_count and seen[0]["prompt_ms"] >= 0
    assert seen[1]["cache_n"] > 0, "the same prompt again comes from the prompt cache"


def test_format_schema_constrains_the_reply(client: ollama.Client) -> None:
    schema = {
        "type": "object",
        "properties": {"colour": {"enum": ["red", "green", "blue"]}, "count": {"type": "integer"}},
        "required": ["colour", "count"],
        "additionalProperties": False,
    }
    reply = client.chat(
        MODEL,
        [{"role": "user", "content": "Pick a colour and a count."}],
        format=schema,
        options={**GREEDY, "num_predict": 40},
    )
    value = json.loads(reply.message.content)
    assert set(value) == {"colour", "count"} and value["colour"] in {"red", "green", "blue"}


def test_tool_history_round_trips(client: ollama.Client) -> None:
    tools = [{"type": "function", "function": {"name": "add", "description": "Add.", "parameters": {}}}]
    history = [
        {"role": "user", "content": "What is 1+2?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "add", "arguments": {"a": 1}}}],
        },
        {"role": "tool", "tool_name": "add", "content": "3"},
    ]
    reply = client.chat(MODEL, history, tools=tools, options=GREEDY)
    assert reply.done and isinstance(reply.message.content, str)


def test_generate_and_preload(client: ollama.Client) -> None:
    generated = client.generate(MODEL, "Count: one, two,", options=GREEDY)
    assert generated.done and generated.response.strip()
    loaded = client.generate(MODEL, "")
    assert loaded.done and loaded.done_reason == "load"


def test_warm_up_fills_the_prompt_cache(client: ollama.Client) -> None:
    system = "You label images. " * 40  # a long prefix, as the agent's system prompt and tools are
    warm_up(client, MODEL, system)
    reply = client.chat(
        MODEL, [{"role": "system", "content": system}, {"role": "user", "content": "Hi"}], options=GREEDY
    )
    assert reply.prompt_eval_count < 20, "the system prefix should come from the cache"


def test_a_larger_num_ctx_reloads_the_model(client: ollama.Client, smollm: Any) -> None:
    loaded = smollm.embedded.n_ctx
    client.chat(MODEL, [{"role": "user", "content": "Hi"}], options={**GREEDY, "num_ctx": 512})
    assert client.ps().models[0].context_length == loaded  # smaller: keep what is loaded
    reply = client.chat(MODEL, [{"role": "user", "content": "Hi"}], options={**GREEDY, "num_ctx": loaded * 2})
    assert reply.done and client.ps().models[0].context_length == loaded * 2


class ChunkingLLM:
    """Replays OpenAI stream chunks (or raises) like EmbeddedLLM.chat with a callback."""

    def __init__(self, chunks: list[dict[str, Any]], error: Exception | None = None) -> None:
        self.chunks, self.error = chunks, error

    def chat(self, request: dict[str, Any], on_chunk: Any) -> None:
        for chunk in self.chunks:
            on_chunk(chunk)
        if self.error:
            raise self.error


def delta(finish: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": fields, "finish_reason": finish}]}


def test_streamed_tool_call_fragments_are_joined() -> None:
    chunks = [
        delta(role="assistant", content=None),
        delta(content="Let me add."),
        delta(tool_calls=[{"index": 0, "id": "c", "function": {"name": "add", "arguments": '{"a": 1,'}}]),
        delta(tool_calls=[{"index": 0, "function": {"arguments": ' "b": 2}'}}]),
        {**delta("tool_calls"), "timings": {"prompt_n": 5, "predicted_n": 9}},
    ]
    lines = [json.loads(b) for b in ndjson_stream(ChunkingLLM(chunks), {}, MODEL, lambda m: {"message": m})]
    assert [line["message"].get("content") for line in lines] == ["Let me add.", "", ""]
    assert lines[1]["message"]["tool_calls"] == [{"function": {"name": "add", "arguments": {"a": 1, "b": 2}}}]
    assert lines[2]["done"] and lines[2]["done_reason"] == "stop"
    assert (lines[2]["prompt_eval_count"], lines[2]["eval_count"]) == (5, 9)


def test_a_failure_mid_stream_becomes_an_error_line() -> None:
    llm = ChunkingLLM([delta(content="Hi")], error=EmbeddedLLMError("context full"))
    lines = [json.loads(b) for b in ndjson_stream(llm, {}, MODEL, lambda m: {"message": m})]
    assert lines == [lines[0], {"error": "context full"}] and lines[0]["message"]["content"] == "Hi"
