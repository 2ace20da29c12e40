"""The MCP server through the SDK's own client: over HTTP at /mcp of the real app (uvicorn on a
loopback port, fake vision stack) with a token, refused without one; and over stdio, as
`labelwright mcp` in a subprocess with the real lite stack."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI

from tests.server import agent_fakes
from tests.server.agent_fakes import Chatty, use_model
from tests.server.conftest import World

CLI = "import sys; from server.cli import main; sys.argv[0] = 'labelwright'; main()"  # `labelwright mcp`

served = agent_fakes.served  # the real app on a loopback port (a fixture)


def http_client(url: str, token: str | None) -> Any:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return Client(streamable_http_client(f"{url}/mcp", http_client=httpx2.AsyncClient(headers=headers)))


def texts(result: Any) -> str:
    return "\n".join(c.text for c in result.content)


async def label_count_and_confirm(client: Any, world: World, wait: Any = None) -> dict[str, Any]:
    """What a client does: list tools, label, count, get a dry run. Returns what it saw."""
    pid = world.project_id
    tools = {t.name: t for t in (await client.list_tools()).tools}
    projects = await client.call_tool("list_projects", {})
    labelled = await client.call_tool("auto_label", {"project_id": pid, "classes": ["person"]})
    if wait is not None:
        await anyio.to_thread.run_sync(wait)
    counted = await client.call_tool("count", {"project_id": pid, "label": "person"})
    dry = await client.call_tool("delete_annotations", {"project_id": pid, "label": "person"})
    after_dry = await client.call_tool("count", {"project_id": pid, "label": "person"})
    return {
        "tools": tools,
        "projects": projects,
        "labelled": labelled,
        "counted": counted,
        "dry": dry,
        "after_dry": after_dry,
    }


def test_an_mcp_client_over_http_needs_a_token(world: World, served: tuple[str, FastAPI]) -> None:
    url, app = served
    use_model(app, Chatty())

    def jobs_done() -> None:  # over HTTP the server's runner labels in the background
        jobs = f"{url}/api/v1/projects/{world.project_id}/jobs"
        deadline = time.monotonic() + 30
        while any(
            j["state"] in ("queued", "running") for j in httpx.get(jobs, headers=world.auth("viewer")).json()
        ):
            assert time.monotonic() < deadline, "the label jobs did not finish"
            time.sleep(0.05)

    async def session() -> dict[str, Any]:
        async with http_client(url, world.tokens["annotator"]) as client:
            seen = await label_count_and_confirm(client, world, jobs_done)
            cid = seen["dry"].structured_content["confirmation_id"]
            async with http_client(url, world.tokens["reviewer"]) as other:
                seen["stolen"] = await other.call_tool("confirm", {"confirmation_id": cid})
            seen["confirmed"] = await client.call_tool("confirm", {"confirmation_id": cid})
            seen["again"] = await client.call_tool("confirm", {"confirmation_id": cid})
            seen["after"] = await client.call_tool(
                "count", {"project_id": world.project_id, "label": "person"}
            )
        async with http_client(url, world.tokens["viewer"]) as viewer:
            seen["viewer"] = await viewer.call_tool(
                "delete_annotations", {"project_id": world.project_id, "everything": True}
            )
        return seen

    seen = anyio.run(session)
    tools = seen["tools"]
    assert {"list_projects", "auto_label", "count", "segment", "delete_annotations", "confirm"} <= set(tools)
    assert tools["count"].input_schema["required"][0] == "project_id"
    assert tools["count"].annotations.read_only_hint and tools["confirm"].annotations.destructive_hint
    assert [p["name"] for p in seen["projects"].structured_content["projects"]] == ["streets"]
    assert "job" in texts(seen["labelled"]) and not seen["labelled"].is_error
    assert not seen["dry"].is_error and "DRY RUN" in texts(seen["dry"])
    assert seen["stolen"].is_error and "not yours" in texts(seen["stolen"])
    assert not seen["confirmed"].is_error and texts(seen["confirmed"]).startswith("applied: done: delete")
    assert seen["again"].is_error  # one use
    assert seen["counted"].structured_content["groups"] == {"person": 4}  # two fake people x two photos
    assert seen["after_dry"].structured_content["groups"] == {"person": 4}  # the dry run changed nothing
    assert seen["after"].structured_content["total"] == 0
    assert seen["viewer"].is_error and "annotator" in texts(seen["viewer"])

    # No token, a bad token: refused before any MCP message is read.
    assert httpx.post(f"{url}/mcp", json={}).status_code == 401
    bad = httpx.post(f"{url}/mcp", json={}, headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"

    async def anonymous() -> None:
        async with http_client(url, None) as client:
            await client.list_tools()

    with pytest.raises(Exception):  # noqa: B017  (the SDK's error type for an HTTP 401)
        anyio.run(anonymous)


def test_an_mcp_client_over_stdio_labels_with_the_lite_stack(world: World, models_dir: Path) -> None:
    if not (models_dir / "lite" / "nanodet.onnx").is_file():
        pytest.skip(f"lite weights are not in {models_dir} (run `labelwright models fetch`)")
    from mcp import Client, StdioServerParameters

    repo = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "LABELWRIGHT_HOME": str(world.home),
        "LABELWRIGHT_MODELS": str(models_dir),
        "PYTHONPATH": str(repo),
    }
    if world.database:  # the MCP process reads its store from the environment, as `labelwright mcp` does
        env["LABELWRIGHT_DATABASE_URL"] = world.database
    params = StdioServerParameters(command=sys.executable, args=["-c", CLI, "mcp"], env=env, cwd=repo)

    async def session() -> dict[str, Any]:
        async with Client(params) as client:
            seen = await label_count_and_confirm(client, world)
            cid = seen["dry"].structured_content["confirmation_id"]
            seen["confirmed"] = await client.call_tool("confirm", {"confirmation_id": cid})
            return seen

    seen = anyio.run(session)
    assert "auto_label" in seen["tools"] and "confirm" in seen["tools"]
    # The job ran in the MCP process: auto_label reports its outcome, not just its id.
    report = texts(seen["labelled"])
    assert "person" in report and "done" in report, report
    people = seen["counted"].structured_content["groups"]["person"]
    assert people > 3, texts(seen["counted"])  # bus.jpg and zidane.jpg: six people, over the dry-run bar
    assert "DRY RUN" in texts(seen["dry"]) and seen["after_dry"].structured_content["groups"] == {
        "person": people
    }
    assert texts(seen["confirmed"]).startswith(f"applied: done: delete {people} annotations")
