"""llama.cpp in-process, via xllamacpp: one GGUF model behind OpenAI-style chat completions.

Nothing here speaks the Ollama protocol; :mod:`agent.ollama_api` does that on top. xllamacpp's
native server is thread safe, releases the GIL while it computes and keeps the KV cache of its
last prompt (``cache_prompt``), so requests whose system+tools prefix is byte-identical skip
re-reading it. The native server also listens on a loopback port of its own, which we do not
advertise.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from agent.prompt_cache import PromptCache, prefix_of

_READ_CHUNK = 8 << 20


class EmbeddedLLMError(RuntimeError):
    """llama.cpp refused a request (context overflow, bad grammar, ...): the text says why."""


@dataclass(frozen=True)
class ModelInfo:
    """What /api/tags and /api/show report about the loaded file."""

    name: str
    path: Path
    size: int
    modified_at: float
    digest: str | None
    n_params: int | None
    n_ctx_train: int | None
    quantization: str | None
    chat_template: str | None
    supports_tools: bool


def preread(path: Path) -> tuple[float, str]:
    """Read the file once, sequentially, and return (seconds, sha256).

    A cold mmap faults pages in random order while the first prompt is evaluated, which we measured
    to triple the first turn; one sequential read puts the file in the page cache first. Hashing
    on the way costs little more than the read and gives /api/tags a real digest.
    """
    start = time.perf_counter()
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_READ_CHUNK):
            digest.update(chunk)
    return time.perf_counter() - start, digest.hexdigest()


class EmbeddedLLM:
    """One GGUF model loaded by xllamacpp.

    Args:
        model_path: the .gguf file.
        name: the model name clients ask for (Ollama style, e.g. ``qwen2.5-coder:1.5b``).
        threads: CPU threads for generation and prompt processing.
        n_ctx: context window in tokens; a request may raise it (the model is reloaded, as Ollama does).
        preread_file: read the file once before loading (see :func:`preread`).
        prompt_cache: a directory for :class:`agent.prompt_cache.PromptCache` (None: keep the
            system+tools prefix only in memory, as before).
        on_timings: called after each request with llama.cpp's ``timings`` (tokens taken from the
            prompt cache ``cache_n``, evaluated ``prompt_n``, generated ``predicted_n``, and the
            milliseconds of each): the shared endpoint logs them, to see where a call's time goes.
    """

    def __init__(
        self,
        model_path: Path,
        *,
        name: str,
        threads: int = 2,
        n_ctx: int = 8192,
        preread_file: bool = True,
        on_timings: Callable[[dict[str, Any]], None] | None = None,
        prompt_cache: Path | None = None,
    ) -> None:
        if not model_path.is_file():
            raise FileNotFoundError(f"LLM weights not found: expected a .gguf file at {model_path}")
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        if n_ctx < 256:
            raise ValueError(f"n_ctx must be >= 256, got {n_ctx}")
        self.path = model_path
        self.name = name
        self.threads = threads
        self.on_timings = on_timings
        self._lock = threading.Lock()
        self._slot_lock = threading.Lock()  # a restore or save must not run beside a request
        self._prefixes = PromptCache(prompt_cache, model_path) if prompt_cache is not None else None
        self._slot_key: str | None = None  # the saved prefix the slot starts with now
        self.preread_s, digest = preread(model_path) if preread_file else (0.0, None)
        self._digest = digest
        self.load_s = 0.0
        self._server: Any = None
        self._load(n_ctx)

    def _load(self, n_ctx: int) -> None:
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(self.path)
        params.n_ctx = n_ctx
        params.n_parallel = 1  # one slot: its KV cache keeps the shared system+tools prefix
        params.cache_prompt = True
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        params.hostnames = ["127.0.0.1"]
        params.verbosity = -1
        if self._prefixes is not None:
            params.endpoint_slots = True  # the native server's loopback port; never advertised
            params.slot_save_path = str(self._prefixes.directory) + os.sep  # it joins by concatenation
        start = time.perf_counter()
        self._server = None  # free the old model before loading a new one
        self._server = xllamacpp.Server(params)
        self._slot_key = None
        self.load_s = time.perf_counter() - start
        self.n_ctx = n_ctx
        self._info = self._read_info()

    def _read_info(self) -> ModelInfo:
        base = self._server.listening_address
        meta = httpx.get(f"{base}/v1/models", timeout=10).json()["data"][0].get("meta", {})
        props = httpx.get(f"{base}/props", timeout=10).json()
        caps = props.get("chat_template_caps", {})
        stat = self.path.stat()
        return ModelInfo(
            name=self.name,
            path=self.path,
            size=stat.st_size,
            modified_at=stat.st_mtime,
            digest=self._digest,
            n_params=meta.get("n_params"),
            n_ctx_train=meta.get("n_ctx_train"),
            quantization=props.get("model_ftype"),
            chat_template=props.get("chat_template"),
            supports_tools=bool(caps.get("supports_tools") or caps.get("supports_tool_calls")),
        )

    @property
    def info(self) -> ModelInfo:
        return self._info

    def ensure_context(self, num_ctx: int) -> None:
        """Reload with a larger window when a request asks for more than is loaded."""
        if num_ctx > self.n_ctx:
            with self._lock:
                if num_ctx > self.n_ctx:
                    self._load(num_ctx)

    def chat(
        self, request: dict[str, Any], on_chunk: Callable[[dict[str, Any]], bool | None] | None = None
    ) -> dict[str, Any] | None:
        """OpenAI-style chat completion; with ``on_chunk`` it streams (return True to stop early).

        Raises:
            EmbeddedLLMError: llama.cpp rejected the request; the message is its own.
        """
        request = {**request, "cache_prompt": True, "stream": on_chunk is not None}
        if self._prefixes is None:
            return self._chat(request, on_chunk)
        with self._slot_lock:
            self._start_slot_with(prefix_of(request))
            return self._chat(request, on_chunk)

    def _start_slot_with(self, prefix: dict[str, Any] | None) -> None:
        """Make the slot begin with ``prefix``'s KV cache: restored from its file, or read once
        and saved for the next process. Anything failing here only costs the time it saves."""
        assert self._prefixes is not None
        if prefix is None:
            self._slot_key = None  # this request overwrites the slot with a prompt of its own
            return
        key = self._prefixes.key(prefix)
        if key == self._slot_key:
            return  # the slot holds it (and maybe the conversation after it, which we keep)
        if self._prefixes.has(key):
            if self._slot_action("restore", self._prefixes.file(key)):
                self._prefixes.used(key)
                self._slot_key = key
                return
            self._prefixes.forget(key)
        self._slot_key = None
        try:
            read = self._server.handle_chat_completions({**prefix, "max_tokens": 1, "cache_prompt": True})
        except ValueError:
            return  # the real request will say what is wrong with it
        if not isinstance(read, dict) or "error" in read:
            return
        if read.get("timings") and self.on_timings is not None:
            self.on_timings(read["timings"])  # a round of its own, so the logs show the read
        if self._slot_action("save", self._prefixes.temporary(key)):
            try:
                self._prefixes.publish(key)
            except OSError:
                return
        self._slot_key = key

    def _slot_action(self, action: str, filename: str) -> bool:
        base = self._server.listening_address
        try:
            answer = httpx.post(f"{base}/slots/0?action={action}", json={"filename": filename}, timeout=120)
        except httpx.HTTPError:
            return False
        return answer.status_code == 200

    def _chat(
        self, request: dict[str, Any], on_chunk: Callable[[dict[str, Any]], bool | None] | None
    ) -> dict[str, Any] | None:
        timings: dict[str, Any] = {}

        def chunk(item: dict[str, Any]) -> bool | None:
            timings.update(item.get("timings") or {})  # the last chunk carries the request's
            return on_chunk(item) if on_chunk is not None else None

        try:
            if on_chunk is None:
                result = self._server.handle_chat_completions(request)
            else:
                result = self._server.handle_chat_completions(request, chunk)
        except ValueError as exc:
            raise EmbeddedLLMError(str(exc)) from None
        if isinstance(result, dict):
            timings.update(result.get("timings") or {})
        if timings and self.on_timings is not None:
            self.on_timings(timings)
        if isinstance(result, dict) and "error" in result:
            error = result["error"]
            message = error.get("message", str(error)) if isinstance(error, dict) else str(error)
            raise EmbeddedLLMError(message)
        return result

    def close(self) -> None:
        self._server = None
