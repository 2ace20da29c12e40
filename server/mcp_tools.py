"""What the MCP server offers, independent of its transport: the command tools (tools/catalog.py)
with their JSON schemas plus a project argument, ``list_projects``, and ``confirm``.

Every call acts as the caller (the token's user over HTTP, the local user over stdio), through
the same operations and policy as every other surface. The dry-run rule is the chat's: a bulk
edit over :data:`ops.bulk.CONFIRM_OVER` annotations answers with a dry run and changes nothing.
Here the confirmation is a second tool call, ``confirm``, with the id the dry run returned; an id
is random, belongs to the user who got it (anyone else is told there is no such id), and expires.
The MCP client decides whether its model may send that second call on its own: the README says
so (most clients ask the person before each call of a tool marked destructive).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ops import projects
from ops.caller import Caller
from ops.errors import OpError
from ops.unit import Env
from tools.edit import DryRun
from tools.registry import Registry, Tool, ToolContext, ToolError

CONFIRM_TTL_S = 15 * 60
MAX_PENDING_PER_USER = 20
MAX_STRUCTURED = 8_000  # characters of JSON: a larger result is sent as text only
PROJECT_ARG = {"type": "integer", "minimum": 1, "description": "Project id (see list_projects)."}


@dataclass(frozen=True)
class Reply:
    text: str
    structured: dict[str, Any] | None = None
    error: bool = False


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    input_schema: dict[str, Any]
    read_only: bool
    destructive: bool


@dataclass(frozen=True)
class _Pending:
    username: str
    project_id: int
    tool: str
    args: dict[str, Any]
    token: str
    summary: str
    expires: float


class McpTools:
    """The tools an MCP client sees, and their calls.

    Args:
        env: the store and data home (for ``list_projects``).
        context_for: the ToolContext a caller's tools run in for a project.
        registry: the tools (default: :func:`tools.catalog.command_tools`, auto_label reporting its
            job's outcome when the job already ran).
    """

    def __init__(
        self, env: Env, context_for: Callable[[Caller, int], ToolContext], registry: Registry | None = None
    ) -> None:
        self.env = env
        self.context_for = context_for
        self.registry = registry or default_registry()
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()

    def specs(self) -> list[ToolSpec]:
        out = [
            ToolSpec(
                "list_projects",
                "The projects you have a role in: id, name, number of images, your role.",
                {"type": "object", "properties": {}},
                read_only=True,
                destructive=False,
            )
        ]
        for name in self.registry.names():
            tool = self.registry.get(name)
            params = dict(tool.schema()["function"]["parameters"])
            params["properties"] = {"project_id": PROJECT_ARG, **params.get("properties", {})}
            params["required"] = ["project_id", *params.get("required", [])]
            out.append(ToolSpec(name, tool.description, params, not tool.mutates, tool.mutates))
        out.append(
            ToolSpec(
                "confirm",
                "Apply a change a dry run described, by its confirmation_id. Only after the user agreed.",
                {
                    "type": "object",
                    "properties": {"confirmation_id": {"type": "string", "description": "From the dry run."}},
                    "required": ["confirmation_id"],
                },
                read_only=False,
                destructive=True,
            )
        )
        return out

    def call(self, caller: Caller, name: str, arguments: dict[str, Any] | None) -> Reply:
        """Run one tool call as ``caller``; refusals and mistakes come back as error replies."""
        args = dict(arguments or {})
        try:
            if name == "list_projects":
                rows = [p.to_dict() for p in projects.list_projects(self.env, caller)]
                return Reply(
                    json.dumps(rows, default=str), {"projects": json.loads(json.dumps(rows, default=str))}
                )
            if name == "confirm":
                return self._confirm(caller, str(args.get("confirmation_id", "")))
            tool = self.registry.get(name)
            project_id = args.pop("project_id", None)
            if not isinstance(project_id, int) or isinstance(project_id, bool):
                raise ToolError(
                    f"{name} needs project_id (an integer; see list_projects), got {project_id!r}"
                )
            ctx = self.context_for(caller, project_id)
            result = tool(ctx, args)
            if isinstance(result, DryRun):
                return self._dry_run(caller, project_id, tool, args, result)
            return _reply(result.text(), result.model_dump(mode="json"))
        except (ToolError, OpError) as exc:
            return Reply(f"error: {exc}", None, error=True)

    def _dry_run(
        self, caller: Caller, project_id: int, tool: Tool, args: dict[str, Any], dry: DryRun
    ) -> Reply:
        cid = secrets.token_urlsafe(12)
        now = time.monotonic()
        pending = _Pending(
            caller.username, project_id, tool.name, tool.parse(args).model_dump(mode="json"),
            dry.token, dry.summary, now + CONFIRM_TTL_S,
        )  # fmt: skip
        with self._lock:
            self._pending = {k: p for k, p in self._pending.items() if p.expires > now}
            mine = sorted((p.expires, k) for k, p in self._pending.items() if p.username == caller.username)
            for _, old in mine[: max(0, len(mine) - MAX_PENDING_PER_USER + 1)]:
                del self._pending[old]
            self._pending[cid] = pending
        text = (
            f"DRY RUN, nothing changed yet: this will {dry.summary}. Show this to the user; only if they "
            f'agree, call confirm with confirmation_id "{cid}" (valid {CONFIRM_TTL_S // 60} minutes).'
        )
        return Reply(
            text,
            {
                "dry_run": True,
                "summary": dry.summary,
                "annotations": dry.annotations,
                "images": dry.images,
                "confirmation_id": cid,
            },
        )

    def _confirm(self, caller: Caller, cid: str) -> Reply:
        with self._lock:
            pending = self._pending.get(cid)
            if pending is None or pending.username != caller.username or pending.expires < time.monotonic():
                raise ToolError(
                    f"no pending change {cid!r} of yours (it expired, was applied, or is not yours)"
                )
            del self._pending[cid]  # one use: a second confirm of the same id does nothing
        tool = self.registry.get(pending.tool)
        assert tool.confirm is not None, f"{tool.name} returned a dry run but cannot confirm one"
        ctx = self.context_for(caller, pending.project_id)
        result = tool.confirm(ctx, tool.parse(pending.args), pending.token)
        return _reply(f"applied: {result.text()}", result.model_dump(mode="json"))


def _reply(text: str, structured: dict[str, Any]) -> Reply:
    small = len(json.dumps(structured, default=str)) <= MAX_STRUCTURED
    return Reply(text, json.loads(json.dumps(structured, default=str)) if small else None)


def default_registry() -> Registry:
    from agent.command import LABELING, reporting
    from tools.catalog import command_tools

    tools = command_tools()
    return Registry([reporting(t) if t.name in LABELING else t for t in map(tools.get, tools.names())])
