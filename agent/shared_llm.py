"""A shared embedded endpoint: one llama.cpp process that CLI calls reuse until it idles out.

Every one-shot ``labelwright chat`` used to load the weights (1.1 GB) and evaluate the agent's
system+tools prompt again before a 3 s answer. Like Ollama, which keeps a model loaded for a while
after use, the first call now starts a detached endpoint process and later calls find it:

- state: ``<models_dir>/llm/endpoint-<model>.json`` holds the endpoint's pid, port and model. A
  state file whose pid is dead, or not our endpoint, or that does not answer, is stale: ignored
  and removed.
- start: one caller at a time (a lock file next to the state), so two calls never load two copies.
  The child runs ``python -m agent.shared_llm`` in its own session with its output in
  ``endpoint-<model>.log``, listens on 127.0.0.1 only and writes the state once it answers.
- exit: the endpoint exits by itself after ``idle_timeout`` seconds without a request (none in
  flight), removing its state; ``stop_endpoints`` (``labelwright llm stop``) ends it sooner.

Its llama.cpp slot keeps the KV cache of the last prompt, so a second call with the same system
and tools skips re-reading them.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agent.llm import LLMUnavailable, default_threads, free_port, model_path, ollama_answers, prompt_cache_dir

DEFAULT_IDLE_TIMEOUT = 600.0  # seconds without a request before the endpoint exits
START_TIMEOUT = 600.0  # weights read + load on a busy 2-core machine; the child's log says why if it fails
MARKER = "agent.shared_llm"  # in the endpoint's command line: how a pid is known to be ours


@dataclass(frozen=True)
class Endpoint:
    """A running shared endpoint, as its state file describes it."""

    pid: int
    port: int
    model: str
    idle_timeout: float
    started_at: float

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def state_path(models_dir: Path, model: str) -> Path:
    """The state file of ``model``'s endpoint (one per model name)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(model).name if model.endswith(".gguf") else model)
    return Path(models_dir) / "llm" / f"endpoint-{slug}.json"


def _is_ours(pid: int) -> bool:
    """True when ``pid`` is alive and is a shared endpoint (not a recycled pid of another program)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return MARKER in cmdline


def _running(pid: int) -> bool:
    """True while ``pid`` exists and has not exited (a zombie waiting for its parent has)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status and "\nState:\tX" not in status


def read_endpoint(path: Path) -> Endpoint | None:
    """The endpoint a state file names if it is alive and ours; a stale file is removed."""
    try:
        endpoint = Endpoint(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if _is_ours(endpoint.pid) and ollama_answers(endpoint.url, timeout=2.0):
        return endpoint
    if not _is_ours(endpoint.pid):
        path.unlink(missing_ok=True)
    return None


@contextlib.contextmanager
def _start_lock(path: Path) -> Any:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def shared_endpoint(
    models_dir: Path,
    model: str,
    *,
    threads: int = 2,
    n_ctx: int = 8192,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    start_timeout: float = START_TIMEOUT,
) -> Endpoint:
    """Find ``model``'s running endpoint, or start one detached and wait until it answers.

    Raises:
        LLMUnavailable: the endpoint did not come up (its log's last lines say why).
        ValueError: ``idle_timeout`` is not positive.
    """
    if idle_timeout <= 0:
        raise ValueError(f"idle_timeout must be > 0 seconds, got {idle_timeout}")
    path = state_path(models_dir, model)
    with _start_lock(path):
        found = read_endpoint(path)
        if found is not None:
            return found
        weights = model_path(models_dir, model)
        if not weights.is_file():
            raise LLMUnavailable(
                f"no Ollama server and no local weights for {model!r}: expected {weights} "
                "(fetch them with `labelwright models fetch`)"
            )
        log = path.with_suffix(".log")
        package_root = str(Path(__file__).resolve().parent.parent)  # the child runs this same code
        paths = [package_root, os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
        command = [sys.executable, "-m", MARKER, "--models-dir", str(models_dir), "--model", model]
        command += ["--threads", str(threads), "--ctx", str(n_ctx), "--idle-timeout", str(idle_timeout)]
        with open(log, "wb") as out:
            child = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # not killed with the terminal's process group
                env=env,
                cwd=path.parent,
            )
        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline:
            if child.poll() is not None:
                break
            found = read_endpoint(path)
            if found is not None and found.pid == child.pid:
                return found
            time.sleep(0.2)
        if child.poll() is None:
            child.terminate()
        tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log.exists() else []
        raise LLMUnavailable(f"the shared LLM endpoint did not start ({log}): " + " | ".join(tail))


def list_endpoints(models_dir: Path) -> list[Endpoint]:
    """The live shared endpoints of ``models_dir`` (stale state files are removed on the way)."""
    found = (read_endpoint(p) for p in sorted((Path(models_dir) / "llm").glob("endpoint-*.json")))
    return [e for e in found if e is not None]


def stop_endpoints(models_dir: Path, timeout: float = 20.0) -> list[Endpoint]:
    """Stop every shared endpoint of ``models_dir``; returns the ones stopped."""
    stopped = []
    for path in sorted((Path(models_dir) / "llm").glob("endpoint-*.json")):
        try:
            endpoint = Endpoint(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        if not _is_ours(endpoint.pid):
            path.unlink(missing_ok=True)
            continue
        os.kill(endpoint.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        # Wait for the process itself, not its command line (that is gone early while it exits).
        while _running(endpoint.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _running(endpoint.pid):
            os.kill(endpoint.pid, signal.SIGKILL)
            while _running(endpoint.pid) and time.monotonic() < deadline + 5:
                time.sleep(0.05)
        path.unlink(missing_ok=True)
        stopped.append(endpoint)
    return stopped


class _IdleTracker:
    """ASGI middleware: counts requests in flight and remembers when the last one ended."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.active = 0
        self.last = time.monotonic()
        self._lock = threading.Lock()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with self._lock:
            self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            with self._lock:
                self.active -= 1
                self.last = time.monotonic()

    def idle_for(self) -> float:
        with self._lock:
            return 0.0 if self.active else time.monotonic() - self.last


TIMINGS = "request timings "  # a log line's prefix; the JSON of llama.cpp's timings follows


def log_timings(timings: dict[str, Any]) -> None:
    """One log line per request: where its time went (benchmarks/chat_oneshot.py reads them)."""
    keys = ("cache_n", "prompt_n", "prompt_ms", "predicted_n", "predicted_ms", "draft_n", "draft_n_accepted")
    print(TIMINGS + json.dumps({k: timings[k] for k in keys if k in timings}), flush=True)


def serve(models_dir: Path, model: str, *, threads: int, n_ctx: int, idle_timeout: float) -> None:
    """The endpoint process: load, publish the state file, serve on loopback, exit when idle."""
    import uvicorn

    from agent.embedded_llm import EmbeddedLLM
    from agent.ollama_api import create_app

    path = state_path(models_dir, model)
    weights = model_path(models_dir, model)
    llm = EmbeddedLLM(
        weights, name=model, threads=threads, n_ctx=n_ctx, on_timings=log_timings,
        prompt_cache=prompt_cache_dir(weights),
    )  # fmt: skip
    tracker = _IdleTracker(create_app(llm))
    port = free_port()
    config = uvicorn.Config(
        tracker, host="127.0.0.1", port=port, log_level="warning", lifespan="off", timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)
    endpoint = Endpoint(os.getpid(), port, model, idle_timeout, time.time())

    def watch() -> None:
        while not server.started:
            time.sleep(0.05)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(endpoint)))
        tmp.replace(path)  # atomic: a reader never sees half a file
        print(f"{model} on {endpoint.url} (pid {endpoint.pid}), idle timeout {idle_timeout:.0f}s", flush=True)
        while not server.should_exit:
            if tracker.idle_for() > idle_timeout:
                print(f"idle for {idle_timeout:.0f}s: exiting", flush=True)
                server.should_exit = True
            time.sleep(min(1.0, idle_timeout / 4))

    threading.Thread(target=watch, name="idle-watch", daemon=True).start()
    try:
        server.run()  # SIGTERM (``llm stop``) makes uvicorn exit gracefully too
    finally:
        with contextlib.suppress(OSError, ValueError, TypeError):
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()
        llm.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="labelwright's shared embedded LLM endpoint")
    parser.add_argument("--models-dir", type=Path, required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--ctx", type=int, default=8192)
    parser.add_argument("--idle-timeout", type=float, default=DEFAULT_IDLE_TIMEOUT)
    args = parser.parse_args(argv)
    serve(args.models_dir, args.model, threads=args.threads, n_ctx=args.ctx, idle_timeout=args.idle_timeout)


if __name__ == "__main__":
    main()
