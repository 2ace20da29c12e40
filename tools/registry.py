"""What a tool is, and the registry the agent and the CLI look tools up in.

A tool is a name, a description, a pydantic args model (its JSON schema is what the LLM sees,
descriptions, ranges and enums intact) and a function ``fn(ctx, args) -> ToolResult``. Errors
split by audience: a :class:`ToolError` is the model's (or user's) mistake and goes back to it as
text so it can correct itself; any other exception is our bug and propagates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import Engine

from ops.caller import Caller
from ops.errors import OpError
from ops.unit import Env


class ToolError(Exception):
    """A failure the caller can fix: bad ids, an unknown label, nothing to act on."""


class Source(StrEnum):
    """Where an argument's value must come from: the user's own words, never a guess or a tool
    result. ``agent.grounding`` enforces it; the declaration sits on the field it guards."""

    CLASS = "class"  # a filter: a class the user named (dropped otherwise)
    NEW_CLASS = "new_class"  # a class name this turn's message writes (refused otherwise)
    CLASSES = "classes"  # classes to label: the user's words (refused otherwise)
    IMAGE = "image"  # image ids or file names the user wrote (dropped otherwise)
    STATUS = "status"  # a status filter: one of its words (dropped otherwise)
    NEW_STATUS = "new_status"  # the status to set: this turn asks for a status change (refused otherwise)
    MAX_SCORE = "max_score"  # a number the user wrote; "below"/"above" decides the bound
    MIN_SCORE = "min_score"
    THRESHOLD = "threshold"  # a number the user wrote, else the tool's default
    EVERY = "every"  # true only when the user said all/every
    NONE = "none"  # true only when the user said without/unlabelled
    TEXT = "text"  # text the user typed


@dataclass(frozen=True)
class From:
    """Field metadata: ``label: Annotated[Label | None, From(Source.CLASS)]``. Not in the JSON
    schema (the model never sees it); read with :func:`grounding`."""

    source: Source


class Asks(StrEnum):
    """What this turn's message must ask for before a tool runs at all (``ASKS`` on its args)."""

    DELETE = "delete"


def grounding(args: type[BaseModel]) -> dict[str, Source]:
    """Field name -> the :class:`Source` declared on it, for every declared field of ``args``."""
    return {
        name: meta.source
        for name, info in args.model_fields.items()
        for meta in info.metadata
        if isinstance(meta, From)
    }


class ToolResult(BaseModel):
    """Structured result; ``text()`` is the compact form the LLM reads (never pixels or masks)."""

    def text(self) -> str:
        return self.model_dump_json(exclude_none=True)


@dataclass
class ToolContext:
    """Everything a tool may touch, handed in by the surface (CLI, agent, UI, server).

    ``caller`` is the person the tool acts for (``via`` says through what, e.g. the agent in run
    12); every change goes through ``ops`` with that caller, so the permission policy holds.
    ``backends`` is built lazily by the surface's factory (the process's one model stack) so a
    count never loads a model. ``on_job`` is told the id of a job a tool queued (the CLI runs it
    in the foreground; a server's runner picks it up by itself).
    """

    engine: Engine
    project_id: int
    home: Path
    models_dir: Path
    caller: Caller
    backends_factory: Callable[[], Any] | None = None
    on_job: Callable[[int], None] | None = None
    _backends: Any = field(default=None, repr=False)

    @property
    def env(self) -> Env:
        return Env(self.engine, self.home)

    @property
    def actor(self) -> str:
        return self.caller.username

    @property
    def agent_run_id(self) -> int | None:
        return self.caller.agent_run_id

    @property
    def backends(self) -> Any:
        if self._backends is None:
            if self.backends_factory is None:
                raise ToolError("no vision models are configured for this session")
            self._backends = self.backends_factory()
        return self._backends


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    args: type[BaseModel]
    fn: Callable[[ToolContext, Any], ToolResult]
    mutates: bool = False  # changes annotations: the agent asks for confirmation on large changes
    # Applies a dry run this tool returned, given its token (the agents call it when the person
    # confirms; the model never sees the token). None: the tool never answers with a dry run.
    confirm: Callable[[ToolContext, Any, str], ToolResult] | None = None

    def schema(self) -> dict[str, Any]:
        """The Ollama/OpenAI function-tool schema for this tool."""
        params = self.args.model_json_schema()
        params.pop("title", None)
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": params},
        }

    def parse(self, raw: dict[str, Any] | str | None) -> BaseModel:
        """Validate arguments from an LLM; raises ToolError with a message it can act on."""
        try:
            if isinstance(raw, str):
                return self.args.model_validate_json(raw or "{}")
            return self.args.model_validate(raw or {})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}" for err in exc.errors()
            )
            raise ToolError(f"invalid arguments for {self.name}: {problems}") from None

    def __call__(self, ctx: ToolContext, raw: dict[str, Any] | str | None) -> ToolResult:
        try:
            return self.fn(ctx, self.parse(raw))
        except OpError as exc:  # a refusal (role, bad input, not found): the model reads and reports it
            raise ToolError(str(exc)) from None


class Registry:
    """Name -> Tool. Plain dict underneath; no plugin machinery."""

    def __init__(self, tools: list[Tool] | None = None) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools or []:
            self.add(tool)

    def add(self, tool: Tool) -> Tool:
        if tool.name in self._tools:
            raise ValueError(f"tool {tool.name!r} is registered twice")
        self._tools[tool.name] = tool
        return tool

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            raise ToolError(f"unknown tool {name!r}; available: {', '.join(sorted(self._tools))}") from None

    def names(self) -> list[str]:
        return list(self._tools)

    def schemas(self, names: list[str] | None = None) -> list[dict[str, Any]]:
        return [self._tools[n].schema() for n in (names or self._tools)]

    def subset(self, names: list[str]) -> Registry:
        return Registry([self.get(n) for n in names])
