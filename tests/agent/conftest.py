"""Agent fixtures: a scripted model, two tiny real tools, and the embedded LLM (session scoped)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field
from sqlalchemy import create_engine

from ops.caller import local_caller
from tools.registry import Registry, Tool, ToolContext, ToolError, ToolResult

CARS = 7


class ScriptedModel:
    """A stand-in for ``ollama.Client``: ``chat`` returns queued replies and records each request.

    A queued item is an assistant message dict (the ollama response shape wraps it) or an
    exception to raise.
    """

    def __init__(self, *replies: dict[str, Any] | Exception) -> None:
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []

    def chat(self, model: str = "", messages: Any = None, **kwargs: Any) -> dict[str, Any]:
        self.requests.append({"model": model, "messages": [dict(m) for m in messages], **kwargs})
        if not self.replies:
            raise AssertionError("the loop asked the model more often than the test scripted")
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return {"model": model, "done": True, "message": {"role": "assistant", **reply}}


def call(name: str, **arguments: Any) -> dict[str, Any]:
    """A native tool call in the ollama response shape."""
    return {"function": {"name": name, "arguments": arguments}}


class CountArgs(BaseModel):
    label: str = Field(description="class name, e.g. car")


class AddArgs(BaseModel):
    a: float
    b: float


class Count(ToolResult):
    label: str
    count: int


class Sum(ToolResult):
    value: float


def _count(ctx: ToolContext, args: CountArgs) -> Count:
    counts = {"car": CARS, "person": 3}
    if args.label not in counts:
        raise ToolError(f"unknown label {args.label!r}; known: car, person")
    return Count(label=args.label, count=counts[args.label])


def _add(ctx: ToolContext, args: AddArgs) -> Sum:
    return Sum(value=args.a + args.b)


@pytest.fixture
def registry() -> Registry:
    return Registry(
        [
            Tool(
                "count_annotations", "Count the annotations with a label in the project.", CountArgs, _count
            ),
            Tool("add", "Add two numbers.", AddArgs, _add),
        ]
    )


@pytest.fixture
def ctx(tmp_path: Path, models_dir: Path) -> ToolContext:
    return ToolContext(
        engine=create_engine(f"sqlite:///{tmp_path / 'lw.db'}"),
        project_id=1,
        home=tmp_path,
        models_dir=models_dir,
        caller=local_caller("agent"),
    )


def _embedded(models_dir: Path, model: str) -> Iterator[Any]:
    from agent.llm import model_path, start_embedded

    if not model_path(models_dir, model).is_file():
        pytest.skip(f"LLM weights for {model} are not in {models_dir} (run `labelwright models fetch`)")
    # One thread: on a shared, oversubscribed CPU two llama.cpp threads wait on each other at every
    # barrier and decode 5-50x slower (measured: 0.4-2.6 vs 11-19 tok/s on SmolLM2 at load 12).
    # CI runs the suite alone, one test at a time, and sets LABELWRIGHT_TEST_LLM_THREADS=2.
    threads = int(os.environ.get("LABELWRIGHT_TEST_LLM_THREADS", "1"))
    handle = start_embedded(models_dir, model, threads=threads, n_ctx=4096)
    yield handle
    handle.close()


@pytest.fixture(scope="session")
def smollm(models_dir: Path) -> Iterator[Any]:
    """SmolLM2-135M behind the embedded Ollama endpoint: fast, for plumbing only."""
    yield from _embedded(models_dir, "smollm2:135m")


@pytest.fixture(scope="session")
def qwen(models_dir: Path) -> Iterator[Any]:
    """Qwen2.5-Coder-1.5B behind the embedded endpoint: the default agent model."""
    yield from _embedded(models_dir, "qwen2.5-coder:1.5b")


def args_of(tool: str) -> type[BaseModel]:
    """The args model of command tool ``tool`` (grounding reads the rules declared on its fields)."""
    from tools.catalog import command_tools

    return command_tools().get(tool).args
