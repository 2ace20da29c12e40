"""The shared embedded endpoint, for real: reused by a second connect, gone when idle or stopped.

SmolLM2-135M with one thread keeps it cheap; a throwaway models dir (the weights linked in) keeps
the state files away from the user's own endpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.llm import LLMHandle, connect, free_port, model_path, ollama_answers
from agent.shared_llm import TIMINGS, Endpoint, list_endpoints, read_endpoint, state_path, stop_endpoints

MODEL = "smollm2:135m"


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


@pytest.fixture
def shared_dir(tmp_path: Path, models_dir: Path) -> Iterator[Path]:
    weights = model_path(models_dir, MODEL)
    if not weights.is_file():
        pytest.skip(f"LLM weights for {MODEL} are not in {models_dir} (run `labelwright models fetch`)")
    (tmp_path / "llm").mkdir()
    (tmp_path / "llm" / weights.name).symlink_to(weights)
    yield tmp_path
    stop_endpoints(tmp_path)  # whatever a failed test left behind


def _connect(models_dir: Path, keep_alive: float) -> LLMHandle:
    nowhere = f"http://127.0.0.1:{free_port()}"  # no Ollama answers there
    return connect(models_dir, MODEL, ollama_host=nowhere, threads=1, n_ctx=1024, keep_alive=keep_alive)


def test_a_second_connect_reuses_the_endpoint_which_outlives_its_callers(shared_dir: Path) -> None:
    first = _connect(shared_dir, keep_alive=120)
    assert first.shared is not None and first.embedded is None
    endpoint: Endpoint = first.shared
    assert endpoint.url.startswith("http://127.0.0.1:")
    assert _alive(endpoint.pid) and endpoint.pid != os.getpid()
    reply = first.client.chat(MODEL, [{"role": "user", "content": "Say hi"}], options={"num_predict": 4})
    assert reply.message.role == "assistant"
    logged = state_path(shared_dir, MODEL).with_suffix(".log").read_text().splitlines()
    timings = [json.loads(line[len(TIMINGS) :]) for line in logged if line.startswith(TIMINGS)]
    assert timings and timings[-1]["predicted_n"] == reply.eval_count  # where the request's time went
    first.close()
    assert ollama_answers(endpoint.url)  # close() leaves the shared endpoint running
    used = _cpu_s(endpoint.pid)
    time.sleep(2.0)
    assert _cpu_s(endpoint.pid) - used < 0.3, "a waiting endpoint must not spin"

    start = time.perf_counter()
    second = _connect(shared_dir, keep_alive=120)
    reused_s = time.perf_counter() - start
    assert second.shared == endpoint
    assert reused_s < 3.0, f"finding the running endpoint took {reused_s:.1f}s"
    assert list_endpoints(shared_dir) == [endpoint]
    state = json.loads(state_path(shared_dir, MODEL).read_text())
    assert state["pid"] == endpoint.pid and state["port"] == endpoint.port


def test_the_endpoint_exits_by_itself_when_idle(shared_dir: Path) -> None:
    handle = _connect(shared_dir, keep_alive=2)
    endpoint: Endpoint = handle.shared
    deadline = time.monotonic() + 30
    while _alive(endpoint.pid) and time.monotonic() < deadline:
        time.sleep(0.25)
    assert not _alive(endpoint.pid), "the idle endpoint is still running after 30 s"
    assert not state_path(shared_dir, MODEL).exists()
    assert "idle for 2s: exiting" in state_path(shared_dir, MODEL).with_suffix(".log").read_text()


def test_a_stale_state_file_is_ignored_and_replaced(shared_dir: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    path = state_path(shared_dir, MODEL)
    stale = Endpoint(pid=dead.pid, port=free_port(), model=MODEL, idle_timeout=600, started_at=0.0)
    path.write_text(json.dumps(stale.__dict__))
    assert read_endpoint(path) is None and not path.exists()  # a dead pid: removed

    alien = Endpoint(pid=os.getpid(), port=free_port(), model=MODEL, idle_timeout=600, started_at=0.0)
    path.write_text(json.dumps(alien.__dict__))  # a live pid that is not an endpoint (this test)
    handle = _connect(shared_dir, keep_alive=60)
    endpoint: Endpoint = handle.shared
    assert endpoint.pid not in (dead.pid, os.getpid()) and ollama_answers(endpoint.url)
    assert json.loads(path.read_text())["pid"] == endpoint.pid


def test_llm_stop_ends_it_and_ps_lists_it(shared_dir: Path) -> None:
    from server.cli_llm import app

    endpoint: Endpoint = _connect(shared_dir, keep_alive=600).shared
    listed = CliRunner().invoke(app, ["ps", "--models-dir", str(shared_dir)])
    assert listed.exit_code == 0 and f"pid {endpoint.pid}" in listed.output and endpoint.url in listed.output
    stopped = CliRunner().invoke(app, ["stop", "--models-dir", str(shared_dir)])
    assert stopped.exit_code == 0, stopped.output
    assert not _alive(endpoint.pid) and not state_path(shared_dir, MODEL).exists()
    again = CliRunner().invoke(app, ["stop", "--models-dir", str(shared_dir)])
    assert "no shared LLM endpoint was running" in again.output


def test_a_bad_idle_timeout_is_refused(shared_dir: Path) -> None:
    from agent.shared_llm import shared_endpoint

    with pytest.raises(ValueError, match="idle_timeout must be > 0 seconds, got -1"):
        shared_endpoint(shared_dir, MODEL, idle_timeout=-1)
