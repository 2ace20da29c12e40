"""The MCP server on the official ``mcp`` SDK: stdio for a desktop client on this machine
(``labelwright mcp``), and streamable HTTP at ``/mcp`` of ``labelwright serve``.

Over HTTP every request needs ``Authorization: Bearer <token>`` (an API token: ``labelwright tokens
create``), even on a loopback server in local mode: MCP clients are programs, and a program on
this machine that should act as the local user uses stdio. The token's user is the caller of every
tool call (``via="mcp"``), so the permission policy holds as on the API. What the tools are and
how a dry run is confirmed: :mod:`server.mcp_tools`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp_types as types

from ops.caller import Caller
from server.mcp_tools import McpTools

NAME = "labelwright"
CALLER_KEY = "labelwright.caller"  # where the HTTP gate leaves the request's caller in the ASGI scope
INSTRUCTIONS = (
    "labelwright: image annotation projects. Call list_projects first; every other tool takes a "
    "project_id. Large changes come back as a dry run with a confirmation_id: show the summary to "
    "the user and call confirm only if they agree."
)


def build_server(tools: McpTools, caller_of: Callable[[Any], Caller | None]) -> Any:
    """An SDK ``Server`` offering ``tools``; ``caller_of(request context)`` says who is calling."""
    from mcp.server.lowlevel import Server

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(
            tools=[
                types.Tool(
                    name=spec.name,
                    description=spec.description,
                    input_schema=spec.input_schema,
                    annotations=types.ToolAnnotations(
                        read_only_hint=spec.read_only, destructive_hint=spec.destructive
                    ),
                )
                for spec in tools.specs()
            ]
        )

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        caller = caller_of(ctx)
        if caller is None:  # the HTTP gate refuses first; this is the second lock
            return types.CallToolResult(
                content=[types.TextContent(type="text", text="error: authentication required")], is_error=True
            )
        reply = await anyio.to_thread.run_sync(tools.call, caller, params.name, dict(params.arguments or {}))
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=reply.text)],
            structured_content=reply.structured,
            is_error=reply.error,
        )

    return Server(NAME, instructions=INSTRUCTIONS, on_list_tools=list_tools, on_call_tool=call_tool)


async def serve_stdio(tools: McpTools, caller: Caller) -> None:
    """Serve over this process's stdin/stdout until the client closes them."""
    from mcp.server.stdio import stdio_server

    server = build_server(tools, lambda ctx: caller)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


class McpHttp:
    """The ``/mcp`` endpoint: a token gate in front of the SDK's streamable-HTTP handler.

    Args:
        tools: what the endpoint offers.
        identify: the caller of an ASGI scope (bearer token only), None when there is none; raises
            ``server.auth.BadCredentials`` for a bad token.
    """

    def __init__(self, tools: McpTools, identify: Callable[[dict[str, Any]], Caller | None]) -> None:
        self.server = build_server(tools, lambda ctx: _caller_of_request(ctx))
        self.identify = identify
        self._manager: Any = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the SDK's session manager for the life of the app (a fresh one per app start)."""
        from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

        manager = StreamableHTTPSessionManager(app=self.server, stateless=True, json_response=True)
        async with manager.run():
            self._manager = manager
            try:
                yield
            finally:
                self._manager = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        from server.auth import BadCredentials

        try:
            caller = await anyio.to_thread.run_sync(self.identify, scope)
        except BadCredentials as exc:
            await _refuse(send, 401, str(exc))
            return
        if caller is None:
            await _refuse(send, 401, "MCP needs 'Authorization: Bearer <token>' (labelwright tokens create)")
            return
        if self._manager is None:
            await _refuse(send, 503, "the MCP endpoint is not running (the app's lifespan has not started)")
            return
        scope[CALLER_KEY] = caller.through("mcp")
        await self._manager.handle_request(scope, receive, send)


def _caller_of_request(ctx: Any) -> Caller | None:
    request = getattr(ctx, "request", None)
    return None if request is None else request.scope.get(CALLER_KEY)


async def _refuse(send: Any, status: int, detail: str) -> None:
    import json

    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def mount_mcp(app: Any) -> McpHttp:
    """Mount ``/mcp`` on the API app (before the UI's catch-all mount at /); its session manager
    runs in the app's lifespan (``app.state.mcp.running()``)."""
    from starlette.routing import Route

    from server.auth import identify
    from store.db import new_session

    def caller_of(scope: dict[str, Any]) -> Caller | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        client = scope.get("client")
        with new_session(app.state.engine) as session:
            return identify(
                session,
                headers=headers,
                cookie=None,  # no cookies: a browser page must not drive tools with a visitor's session
                peer=client[0] if client else None,
                signer=app.state.signer,
                trusted_proxies=app.state.settings.trusted_proxies,
                local=False,  # a token even in local mode: local programs use stdio
            )

    tools = McpTools(
        app.state.env, lambda caller, project_id: app.state.agents.tool_context(caller, project_id)
    )
    endpoint = McpHttp(tools, caller_of)
    app.router.routes.append(Route("/mcp", endpoint=endpoint, methods=["GET", "POST", "DELETE"]))
    app.state.mcp = endpoint
    return endpoint
