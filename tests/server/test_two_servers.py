"""Two `labelwright serve` processes on one database (real subprocesses on 127.0.0.1): an edit made
through one reaches an SSE client of the other within a second, through the shared outbox
(issue 12, part 3). On PostgreSQL NOTIFY wakes the other server's follower; on SQLite (two servers
on one host, one file) it finds the row at its next look, every 0.2 s."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import REPO
from tests.server.conftest import World
from tests.server.test_api_events import listen, next_event

pytestmark = pytest.mark.timeout(240)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_serve(world: World, port: int, log) -> subprocess.Popen:
    env = {
        **{k: v for k, v in os.environ.items() if k != "LABELWRIGHT_DATABASE_URL"},
        "LABELWRIGHT_HOME": str(world.home),
        "LABELWRIGHT_LOCAL_MODE": "false",
        "PYTHONPATH": str(REPO),
    }
    if world.database:  # PostgreSQL; else the SQLite file in the home
        env["LABELWRIGHT_DATABASE_URL"] = str(world.database)
    code = "import sys; from server.cli import main; sys.argv = ['labelwright', *sys.argv[1:]]; main()"
    command = [sys.executable, "-c", code, "serve", "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_up(base: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"serve exited with {proc.returncode}"
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{base} did not answer within {timeout} s")


@pytest.fixture
def two_servers(world: World, tmp_path) -> Iterator[list[str]]:
    procs, bases = [], []
    with open(tmp_path / "serve.log", "wb") as log:
        try:
            for _ in range(2):
                port = free_port()
                procs.append(start_serve(world, port, log))
                bases.append(f"http://127.0.0.1:{port}")
            for base, proc in zip(bases, procs, strict=True):
                wait_up(base, proc)
            yield bases
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


@pytest.mark.parametrize(
    "world", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_an_edit_through_one_server_reaches_the_other_servers_stream_within_a_second(
    two_servers: list[str], world: World
) -> None:
    editor_base, reader_base = two_servers
    events: queue.Queue = queue.Queue()
    ready = threading.Event()
    args = (reader_base, world.project_id, world.tokens["viewer"], events, ready)
    threading.Thread(target=listen, args=args, daemon=True).start()
    assert ready.wait(10), "the event stream of the second server did not open"
    url = f"{editor_base}/api/v1/projects/{world.project_id}/annotations/{world.annotation_id}"
    delays = []
    for version in (1, 2, 3):  # a few edits: the first is not a lucky one
        sent = time.monotonic()
        response = httpx.patch(
            url, json={"version": version, "score": 0.5 + version / 10}, headers=world.auth("annotator")
        )
        assert response.status_code == 200, response.text
        arrived, event = next_event(events, "annotation", action="updated", ids=[world.annotation_id])
        assert (event["version"], event["actor"], event["via"]) == (version + 1, "annotator", "api")
        delays.append(arrived - sent)
    print(f"edit -> other server's SSE client: {[round(d * 1000) for d in delays]} ms")
    assert max(delays) < 1.0, delays
