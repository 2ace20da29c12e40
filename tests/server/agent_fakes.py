"""The real app served on a loopback port (``served``), its agent pool on a scripted LLM
(tests/agent/conftest.py ScriptedModel), and the fake vision stack for its tools and its segment
route: the API's chat, segmentation and MCP through the real app, without loading a model."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from agent.llm import LLMHandle, free_port
from server.agents import AgentPool
from tests.server.conftest import World, make_app
from tests.tools.conftest import FakeBackends, FakeDetector


class Chatty:
    """A model that answers every request with the same words and never calls a tool."""

    def __init__(self, text: str = "I can help with that.") -> None:
        self.text = text

    def chat(self, model: str = "", messages: Any = None, **kwargs: Any) -> dict[str, Any]:
        return {"model": model, "done": True, "message": {"role": "assistant", "content": self.text}}


def use_model(app: FastAPI, client: Any) -> FakeBackends:
    """Give ``app``'s agents the model ``client`` and the fake vision stack; returns the stack."""
    backends = FakeBackends(detector=FakeDetector())
    old: AgentPool = app.state.agents
    app.state.backends = lambda: backends
    app.state.agents = AgentPool(
        lambda: LLMHandle(client, "scripted", ""),  # type: ignore[arg-type]
        lambda caller, project_id: _with_backends(old.tool_context(caller, project_id), backends),
    )
    return backends


def _with_backends(ctx: Any, backends: FakeBackends) -> Any:
    ctx.backends_factory = lambda: backends
    return ctx


@pytest.fixture
def served(world: World) -> Iterator[tuple[str, FastAPI]]:
    """The real app served by uvicorn on a free loopback port, its lifespan (job runner, MCP) running."""
    app = make_app(world)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", app
    server.should_exit = True
    thread.join(timeout=20)
