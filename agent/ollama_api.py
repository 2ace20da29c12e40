"""The Ollama HTTP protocol on top of :class:`agent.embedded_llm.EmbeddedLLM`.

No Ollama binary exists in any package registry, so we serve the part of its API the agent and
the official ``ollama`` client use: ``/api/chat``, ``/api/generate``, ``/api/tags``, ``/api/show``,
``/api/ps``, ``/api/version``. A real Ollama is a drop-in replacement. The server has no auth:
bind it to loopback (see :func:`check_bind_host`).
"""

from __future__ import annotations

import ipaddress
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from agent.embedded_llm import EmbeddedLLM, EmbeddedLLMError
from agent.ollama_protocol import ollama_call, to_ollama_message, to_openai_request

OLLAMA_PROTOCOL_VERSION = "0.12.0"  # the Ollama release whose API this mirrors


def check_bind_host(host: str, allow_network: bool) -> None:
    """Refuse a non-loopback address unless explicitly allowed: the endpoint has no auth."""
    if allow_network or host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"refusing to serve the LLM on {host!r}: expected a loopback address such as 127.0.0.1 "
            "(the endpoint has no authentication; pass --allow-network to override)"
        )


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _stats(result: dict[str, Any], started: float) -> dict[str, Any]:
    timings = result.get("timings") or {}
    usage = result.get("usage") or {}
    return {
        "total_duration": int((time.perf_counter() - started) * 1e9),
        "load_duration": 0,
        # tokens evaluated for this request: a prefix reused from the prompt cache is not counted
        "prompt_eval_count": timings.get("prompt_n", usage.get("prompt_tokens", 0)),
        "prompt_eval_duration": int(timings.get("prompt_ms", 0) * 1e6),
        "eval_count": usage.get("completion_tokens", timings.get("predicted_n", 0)),
        "eval_duration": int(timings.get("predicted_ms", 0) * 1e6),
    }


def _done_reason(finish_reason: str | None) -> str:
    return "length" if finish_reason == "length" else "stop"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


Shape = Callable[[dict[str, Any]], dict[str, Any]]  # assistant message -> the endpoint's payload


def ndjson_stream(llm: EmbeddedLLM, request: dict[str, Any], model: str, shape: Shape) -> Iterator[bytes]:
    """NDJSON lines: content deltas as they come, tool calls once complete, then a done line."""
    chunks: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()
    end = object()
    started = time.perf_counter()

    def on_chunk(chunk: dict[str, Any]) -> bool:
        chunks.put(chunk)
        return stop.is_set()  # True tells llama.cpp to stop: the client went away

    def work() -> None:
        try:
            llm.chat(request, on_chunk)
            chunks.put(end)
        except Exception as exc:  # reported to the client as Ollama does, in the stream
            chunks.put(exc)

    threading.Thread(target=work, daemon=True).start()
    calls: dict[int, dict[str, str]] = {}
    last: dict[str, Any] = {}
    finish: str | None = None

    def line(payload: dict[str, Any]) -> bytes:
        return (json.dumps({"model": model, "created_at": _now(), **payload}) + "\n").encode()

    try:
        while (item := chunks.get()) is not end:
            if isinstance(item, Exception):
                yield (json.dumps({"error": str(item)}) + "\n").encode()
                return
            last = item
            for choice in item.get("choices") or []:
                delta = choice.get("delta") or {}
                finish = choice.get("finish_reason") or finish
                for call in delta.get("tool_calls") or []:
                    acc = calls.setdefault(call.get("index", 0), {"name": "", "arguments": ""})
                    fn = call.get("function") or {}
                    acc["name"] += fn.get("name") or ""
                    acc["arguments"] += fn.get("arguments") or ""
                if delta.get("content"):
                    yield line({**shape({"role": "assistant", "content": delta["content"]}), "done": False})
        if calls:
            ordered = [ollama_call(c["name"], c["arguments"]) for _, c in sorted(calls.items())]
            message = {"role": "assistant", "content": "", "tool_calls": ordered}
            yield line({**shape(message), "done": False})
        done = {"done": True, "done_reason": _done_reason(finish), **_stats(last, started)}
        yield line({**shape({"role": "assistant", "content": ""}), **done})
    finally:
        stop.set()


def create_app(llm: EmbeddedLLM) -> FastAPI:
    """The Ollama-protocol app serving ``llm`` under its Ollama-style name."""
    app = FastAPI(title="labelwright embedded LLM (Ollama protocol)")

    def known(name: str | None) -> bool:
        return name in (llm.name, f"{llm.name}:latest") or (name or "").removesuffix(":latest") == llm.name

    def details() -> dict[str, Any]:
        info = llm.info
        size = f"{info.n_params / 1e9:.1f}B" if info.n_params and info.n_params >= 1e9 else None
        if info.n_params and size is None:
            size = f"{info.n_params / 1e6:.0f}M"
        return {"format": "gguf", "parameter_size": size, "quantization_level": info.quantization}

    def model_entry() -> dict[str, Any]:
        info = llm.info
        modified = datetime.fromtimestamp(info.modified_at, UTC).isoformat().replace("+00:00", "Z")
        return {
            "name": llm.name,
            "model": llm.name,
            "modified_at": modified,
            "size": info.size,
            "digest": info.digest or "",
            "details": details(),
        }

    def run(body: dict[str, Any], shape: Shape) -> Any:
        model = body.get("model")
        if not known(model):
            return _error(404, f"model '{model}' not found")
        if not body.get("messages"):  # Ollama's way to preload a model
            return {"model": model, "created_at": _now(), **shape({"role": "assistant", "content": ""}),
                    "done": True, "done_reason": "load"}  # fmt: skip
        try:
            request = to_openai_request(body)
        except ValueError as exc:
            return _error(400, str(exc))
        num_ctx = (body.get("options") or {}).get("num_ctx")
        if isinstance(num_ctx, int):
            llm.ensure_context(num_ctx)  # Ollama reloads the model for a larger window; so do we
        if body.get("stream", True):
            lines = ndjson_stream(llm, request, model, shape)
            return StreamingResponse(lines, media_type="application/x-ndjson")
        started = time.perf_counter()
        try:
            result = llm.chat(request)
        except EmbeddedLLMError as exc:
            return _error(400, str(exc))
        assert result is not None
        choice = result["choices"][0]
        return {
            "model": model,
            "created_at": _now(),
            **shape(to_ollama_message(choice["message"])),
            "done": True,
            "done_reason": _done_reason(choice.get("finish_reason")),
            **_stats(result, started),
        }

    @app.get("/")
    def root() -> PlainTextResponse:
        return PlainTextResponse("Ollama is running")

    @app.get("/api/version")
    def version() -> dict[str, str]:
        return {"version": OLLAMA_PROTOCOL_VERSION}

    @app.get("/api/tags")
    def tags() -> dict[str, Any]:
        return {"models": [model_entry()]}

    @app.get("/api/ps")
    def ps() -> dict[str, Any]:
        return {"models": [{**model_entry(), "size_vram": 0, "context_length": llm.n_ctx}]}

    @app.post("/api/show")
    def show(body: dict[str, Any]) -> Any:
        name = body.get("model") or body.get("name")
        if not known(name):
            return _error(404, f"model '{name}' not found")
        info = llm.info
        return {
            "modelfile": f"FROM {info.path}",
            "parameters": "",
            "template": info.chat_template or "",
            "details": details(),
            "model_info": {"general.parameter_count": info.n_params, "context_length": info.n_ctx_train},
            "capabilities": ["completion", "tools"] if info.supports_tools else ["completion"],
            "modified_at": model_entry()["modified_at"],
        }

    @app.post("/api/chat")
    def chat(body: dict[str, Any]) -> Any:
        return run(body, lambda message: {"message": message})

    @app.post("/api/generate")
    def generate(body: dict[str, Any]) -> Any:
        messages = [{"role": "system", "content": body["system"]}] if body.get("system") else []
        if body.get("prompt"):
            messages.append({"role": "user", "content": body["prompt"], "images": body.get("images")})
        chat_body = {**body, "messages": messages if body.get("prompt") else []}
        return run(chat_body, lambda message: {"response": message.get("content", "")})

    return app
