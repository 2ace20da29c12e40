"""An app's agent pool on a scripted LLM (tests/agent/conftest.py ScriptedModel), and the fake
vision stack for its tools and its segment route: the API's chat and segmentation through the
real app, without loading a model."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from agent.llm import LLMHandle
from server.agents import AgentPool
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
