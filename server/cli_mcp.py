"""`labelwright mcp`: the MCP server over stdio, for a desktop MCP client on this machine.

Mount on the main CLI with ``app.add_typer(cli_mcp.app)``. It acts as the local user (like every
CLI verb: whoever can run it here can read the data home anyway), with ``via="mcp"`` in history.
Labeling jobs a tool starts run in this process, so ``auto_label`` answers with their outcome.
Nothing but MCP messages goes to stdout; logs go to stderr.
"""

from __future__ import annotations

from typing import Annotated

import typer

from server.settings import get_settings

app = typer.Typer(add_completion=False)


@app.command("mcp")
def mcp(
    stack: Annotated[str | None, typer.Option(help="Vision stack: lite | full (default: setting).")] = None,
) -> None:
    """Serve the MCP tools (label, count, find, edit with dry run + confirm, export) over stdio."""
    import anyio

    from ops.caller import local_caller
    from ops.unit import Env
    from server.cli_label import make_runner
    from server.mcp_server import serve_stdio
    from server.mcp_tools import McpTools
    from tools.auto_label import KIND
    from tools.registry import ToolContext

    settings = get_settings()
    engine = settings.open_store()
    runner = make_runner(engine, settings.home, settings.models_dir, stack or settings.stack)

    def context(caller: object, project_id: int) -> ToolContext:
        return ToolContext(
            engine=engine,
            project_id=project_id,
            home=settings.home,
            models_dir=settings.models_dir,
            caller=caller,  # type: ignore[arg-type]
            backends_factory=lambda: runner.handlers[KIND].backends,
            on_job=runner.run_job,
        )

    tools = McpTools(Env(engine, settings.home), context)
    anyio.run(serve_stdio, tools, local_caller("mcp"))


if __name__ == "__main__":
    app()
