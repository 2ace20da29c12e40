"""Live collaboration: two clients on a real uvicorn server (127.0.0.1, a thread); one edits, the
other's Server-Sent Events stream shows the change within a second. Events of another project
never arrive."""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from tests.server.conftest import World, make_app


@pytest.fixture
def app(world: World) -> FastAPI:
    return make_app(world)


@pytest.fixture
def server(app: FastAPI) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


def listen(base: str, project_id: int, token: str, into: queue.Queue, ready: threading.Event) -> None:
    """Read the SSE stream, putting (arrival time, event dict) on ``into``."""
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{base}/api/v1/projects/{project_id}/events"
    try:
        with httpx.stream("GET", url, headers=headers, params={"until_s": 10}, timeout=15) as response:
            if response.status_code != 200 or not response.headers["content-type"].startswith(
                "text/event-stream"
            ):
                return  # the test sees ``ready`` never set
            for line in response.iter_lines():
                if line.startswith(": connected"):
                    ready.set()
                elif line.startswith("data: "):
                    into.put((time.monotonic(), json.loads(line.removeprefix("data: "))))
    except httpx.TransportError:
        return  # the server stopped at teardown with the stream still open


def next_event(events: queue.Queue, kind: str, timeout: float = 3, **match: object) -> tuple[float, dict]:
    """The next event of ``kind`` whose fields equal ``match`` (others, e.g. the seed job's, pass)."""
    deadline = time.monotonic() + timeout
    while True:
        arrived, event = events.get(timeout=max(deadline - time.monotonic(), 0.01))
        if event["kind"] == kind and all(event.get(k) == v for k, v in match.items()):
            return arrived, event


def test_an_edit_reaches_the_other_client_within_a_second(server: str, world: World) -> None:
    events: queue.Queue = queue.Queue()
    ready = threading.Event()
    reader = threading.Thread(
        target=listen, args=(server, world.project_id, world.tokens["viewer"], events, ready), daemon=True
    )
    reader.start()
    assert ready.wait(5), "the event stream did not open"
    url = f"{server}/api/v1/projects/{world.project_id}/annotations/{world.annotation_id}"
    with httpx.Client(headers=world.auth("annotator")) as editor:
        sent = time.monotonic()
        response = editor.patch(url, json={"version": 1, "score": 0.5})
        assert response.status_code == 200, response.text
    arrived, event = next_event(events, "annotation", action="updated", ids=[world.annotation_id])
    assert arrived - sent < 1.0
    assert event["id"] > 0  # its place in the outbox: a reconnecting client resumes after it
    assert {k: v for k, v in event.items() if k != "id"} == {
        "project_id": world.project_id,
        "kind": "annotation",
        "action": "updated",
        "ids": [world.annotation_id],
        "version": 2,
        "actor": "annotator",
        "via": "api",
        "data": {},
    }


def test_job_progress_is_streamed_and_projects_are_separate(server: str, world: World) -> None:
    mine: queue.Queue = queue.Queue()
    others: queue.Queue = queue.Queue()
    ready_mine, ready_others = threading.Event(), threading.Event()
    for pid, into, ready in (
        (world.project_id, mine, ready_mine),
        (world.other_project_id, others, ready_others),
    ):
        args = (server, pid, world.tokens["root"], into, ready)
        threading.Thread(target=listen, args=args, daemon=True).start()
    assert ready_mine.wait(5) and ready_others.wait(5)
    with httpx.Client(headers=world.auth("annotator")) as client:
        started = client.post(
            f"{server}/api/v1/projects/{world.project_id}/jobs", json={"classes": ["person"]}
        )
        assert started.status_code == 202
    job_id = started.json()["id"]
    deadline = time.monotonic() + 10
    states = []
    while "done" not in states:
        _, event = next_event(mine, "job", timeout=deadline - time.monotonic())
        if event["ids"] == [job_id]:
            states.append(event["action"])
            assert event["data"]["total"] == 2 and event["actor"] == "annotator"
    assert states[0] == "queued" and "running" in states and states[-1] == "done"
    assert all(e["project_id"] == world.other_project_id for _, e in list(others.queue))
    assert [e for _, e in list(others.queue) if e["kind"] == "job"] == []


def test_a_closed_stream_unsubscribes(server: str, app: FastAPI, world: World) -> None:
    url = f"{server}/api/v1/projects/{world.project_id}/events"
    with httpx.stream("GET", url, headers=world.auth("viewer"), timeout=5) as response:
        lines = response.iter_lines()  # held: a dropped iterator closes the connection when collected
        assert next(lines) == ": connected"
        assert app.state.events.subscriber_count() == 1
    deadline = time.monotonic() + 3
    while app.state.events.subscriber_count() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert app.state.events.subscriber_count() == 0


def test_a_cli_change_in_another_process_reaches_the_stream(server: str, world: World) -> None:
    """The CLI shares the database, not the process: its change reaches the server's streams
    through the event outbox."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    events: queue.Queue = queue.Queue()
    ready = threading.Event()
    args = (server, world.project_id, world.tokens["viewer"], events, ready)
    threading.Thread(target=listen, args=args, daemon=True).start()
    assert ready.wait(5), "the event stream did not open"
    env = {**os.environ, "LABELWRIGHT_HOME": str(world.home)}
    if world.database:  # the PostgreSQL case: the CLI opens the same database
        env["LABELWRIGHT_DATABASE_URL"] = world.database
    cli = [sys.executable, "-c", "from server.cli import main; main()"]
    done = subprocess.run(
        [*cli, "undo", "--project", "streets", "--json"], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    sent = time.monotonic()
    undone = json.loads(done.stdout)["undo"][0]["annotation_ids"]
    arrived, event = next_event(events, "annotation", timeout=5, action="undo")
    assert arrived - sent < 1.0
    assert (event["actor"], event["via"], event["ids"]) == ("local", "cli", undone) and undone
