"""Getting an ``ollama.Client`` to talk to: a real Ollama if one answers, else our embedded endpoint.

The agent only ever speaks the Ollama protocol through the official client, so the same code runs
against ``ollama serve`` or against llama.cpp in this process (:mod:`agent.ollama_api`).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import ollama

DEFAULT_MODEL = "qwen2.5-coder:1.5b"
MODEL_FILES = {  # Ollama-style name -> GGUF file under the models dir
    "qwen2.5-coder:1.5b": "llm/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    "smollm2:135m": "llm/smollm2-135m.gguf",  # plumbing tests only: too small to pick tools
}


def default_threads() -> int:
    """llama.cpp threads for this machine: :func:`threads_for` the CPUs this process may use."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = list(range(os.cpu_count() or 1))
    siblings = []
    for cpu in cpus:
        try:
            siblings.append(
                Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list").read_text()
            )
        except OSError:
            siblings.append(str(cpu))
    return threads_for(siblings)


def threads_for(siblings: list[str]) -> int:
    """Physical cores, at most all CPUs but one (``siblings``: each CPU's SMT sibling list).

    llama.cpp's threads meet at a barrier after every operation (hundreds per token), so a thread
    that waits for a core stalls the others. With as many threads as cores, anything else running
    (the CLI, the server, a test) does that: on 2 shared cores at load 9-12, 2 threads generated
    0.3-0.6 tokens/s and 1 thread 3.6-6.5 (benchmarks/chat_oneshot.py). SMT siblings count once.
    """
    cores = {s.strip() for s in siblings}
    return max(1, min(len(cores), len(siblings) - 1))


class LLMUnavailable(RuntimeError):
    """The LLM cannot be reached or refused the request: our failure, not the model's."""


def model_path(models_dir: Path, model: str) -> Path:
    """Where the weights of ``model`` live (a known name, or a path to a .gguf file)."""
    if model in MODEL_FILES:
        return models_dir / MODEL_FILES[model]
    if model.endswith(".gguf"):
        return Path(model)
    known = ", ".join(sorted(MODEL_FILES))
    raise ValueError(f"unknown LLM {model!r}: expected one of {known} or a path to a .gguf file")


def ollama_url(host: str) -> str:
    """An OLLAMA_HOST value (``host``, ``host:port`` or a URL) as a URL, defaulting as Ollama does."""
    url = host.rstrip("/") if "://" in host else f"http://{host.rstrip('/')}"
    if "://" not in host and urlsplit(url).port is None:
        url += ":11434"
    return url


def ollama_answers(host: str, timeout: float = 1.0) -> bool:
    """True when an Ollama-protocol server answers at ``host`` (any OLLAMA_HOST form)."""
    try:
        return httpx.get(f"{ollama_url(host)}/api/version", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class ThreadedServer:
    """uvicorn serving an ASGI app from a daemon thread (the embedded endpoint inside our process)."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int | None = None) -> None:
        import uvicorn

        self.host = host
        self.port = port or free_port(host)
        config = uvicorn.Config(app, host=host, port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="embedded-llm-http", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> ThreadedServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise LLMUnavailable(f"the embedded LLM endpoint did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


@dataclass
class LLMHandle:
    """A client, the model name to pass it, and what to shut down when done."""

    client: ollama.Client
    model: str
    host: str
    embedded: Any = None  # the EmbeddedLLM when we started one
    shared: Any = None  # the shared endpoint (agent.shared_llm.Endpoint) when we use one; left running
    _server: ThreadedServer | None = field(default=None, repr=False)

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
        if self.embedded is not None:
            self.embedded.close()


def prompt_cache_dir(model_file: Path) -> Path | None:
    """Where :mod:`agent.prompt_cache` keeps ``model_file``'s saved prefixes: beside the weights,
    outside any project; None where that cannot be written (a read-only models dir)."""
    directory = model_file.parent / "prompt-cache"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return directory if os.access(directory, os.W_OK) else None


def start_embedded(
    models_dir: Path, model: str = DEFAULT_MODEL, *, threads: int = 2, n_ctx: int = 8192, preread: bool = True
) -> LLMHandle:
    """Load ``model`` with llama.cpp and serve the Ollama protocol on a free loopback port."""
    from agent.embedded_llm import EmbeddedLLM
    from agent.ollama_api import create_app

    path = model_path(models_dir, model)
    if not path.is_file():
        raise LLMUnavailable(
            f"no Ollama server and no local weights for {model!r}: expected {path} "
            "(fetch them with `labelwright models fetch`)"
        )
    cache = prompt_cache_dir(path)
    llm = EmbeddedLLM(
        path, name=model, threads=threads, n_ctx=n_ctx, preread_file=preread, prompt_cache=cache
    )
    server = ThreadedServer(create_app(llm)).start()
    return LLMHandle(ollama.Client(host=server.url), model, server.url, embedded=llm, _server=server)


def connect(
    models_dir: Path,
    model: str = DEFAULT_MODEL,
    *,
    ollama_host: str | None = None,
    threads: int = 2,
    n_ctx: int = 8192,
    keep_alive: float | None = None,
) -> LLMHandle:
    """Use the Ollama at ``ollama_host`` if it answers and has ``model``; else the embedded one.

    The embedded one runs in this process and stops with ``close()``; with ``keep_alive`` seconds
    it is the shared endpoint instead (:mod:`agent.shared_llm`): found running or started detached,
    left running after ``close()`` and gone after ``keep_alive`` idle seconds, so the next CLI call
    answers without loading the weights or re-reading the prompt. ``ollama_host`` and
    ``keep_alive`` come from the caller (the server reads the environment), never from env here.
    """
    if ollama_host and ollama_answers(ollama_host):
        url = ollama_url(ollama_host)
        client = ollama.Client(host=url)
        names = {m.model for m in client.list().models}
        if model in names or f"{model}:latest" in names:
            return LLMHandle(client, model, url)
    if keep_alive:
        from agent.shared_llm import shared_endpoint

        try:
            endpoint = shared_endpoint(
                models_dir, model, threads=threads, n_ctx=n_ctx, idle_timeout=keep_alive
            )
        except OSError:  # no writable state dir (a read-only models dir): a private copy, as without
            return start_embedded(models_dir, model, threads=threads, n_ctx=n_ctx)
        return LLMHandle(ollama.Client(host=endpoint.url), model, endpoint.url, shared=endpoint)
    return start_embedded(models_dir, model, threads=threads, n_ctx=n_ctx)


def warm_up(
    client: ollama.Client, model: str, system: str, tools: list[dict[str, Any]] | None = None
) -> float:
    """Evaluate the system+tools prefix once so later turns reuse its KV cache; returns seconds.

    Works the same on a real Ollama. Later requests must send the same system text and tool list,
    in the same order, for the cache to apply.
    """
    start = time.perf_counter()
    try:
        client.chat(model, [{"role": "system", "content": system}], tools=tools, options={"num_predict": 1})
    except (ollama.ResponseError, ConnectionError, httpx.HTTPError) as exc:
        raise LLMUnavailable(f"warming {model} failed: {exc}") from exc
    return time.perf_counter() - start
