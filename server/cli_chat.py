"""`labelwright chat`: give the command agent one message, or talk to it in the terminal.

Mount on the main CLI with ``app.command("chat")(chat)``; ``python -m server.cli_chat`` runs it
alone. The LLM is the Ollama at ``OLLAMA_HOST`` when one answers and has the model, else the
embedded llama.cpp endpoint (``agent.llm.connect``). Labeling jobs run in this process, so the
agent reports their outcome when they finish. A large change waits for a "yes" in the next message:
in a one-message call that means ``labelwright chat --resume RUN_ID "yes"``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from agent.events import AssistantText, Event, Final, ToolCall, ToolResult
from agent.lexicon import LANGUAGES, merge
from agent.llm import DEFAULT_MODEL, LLMUnavailable, connect
from ops.errors import OpError
from server.cli_ops import CLI
from server.settings import get_settings

app = typer.Typer(help="Talk to the command agent about a project.", add_completion=False)
console = Console(stderr=True)
SHOWN = 300  # characters of a tool result printed in the compact view


def _ollama_host() -> str | None:
    host = os.environ.get("OLLAMA_HOST")
    if not host:
        return None
    return host if "://" in host else f"http://{host}"


def printer(as_json: bool) -> Any:
    """An event sink: compact lines on stderr and the answer on stdout, or JSON lines on stdout."""

    def show(event: Event) -> None:
        if as_json:
            typer.echo(json.dumps({"type": type(event).__name__, **dataclasses.asdict(event)}, default=str))
        elif isinstance(event, ToolCall):
            console.print(f"[cyan]> {event.name}[/cyan] {escape(json.dumps(event.args, default=str))}")
        elif isinstance(event, ToolResult):
            text = event.text if len(event.text) <= SHOWN else event.text[:SHOWN] + " ..."
            console.print(f"[{'red' if event.error else 'green'}]< {escape(text)}[/]")
        elif isinstance(event, AssistantText):
            console.print(f"[dim]{escape(event.text)}[/dim]")
        elif isinstance(event, Final):
            typer.echo(event.text)

    return show


def _context(engine: Any, project_id: int, home: Path, models_dir: Path, stack: str, quiet: bool) -> Any:
    """A ToolContext acting as the local user whose queued labeling jobs run here, to the end,
    printing progress.

    The job runner (and with it the web app's module, the vision stacks' and training's code) is
    built on first use: a count or a rename never needs it, and importing it was about a third of
    a warm one-shot call's own start-up.
    """
    import functools

    from tools.auto_label import KIND
    from tools.registry import ToolContext

    @functools.cache
    def runner() -> Any:
        from server.cli_label import make_runner
        from server.jobs import ProgressEvent

        made = make_runner(engine, home, models_dir, stack)

        def progress(event: ProgressEvent) -> None:
            if not quiet:
                console.print(
                    f"[dim]  job {event.job_id} {event.state}: {event.done}/{event.total} images[/dim]"
                )

        made.subscribe(progress)
        return made

    return ToolContext(
        engine=engine,
        project_id=project_id,
        home=home,
        models_dir=models_dir,
        caller=CLI,
        backends_factory=lambda: runner().handlers[KIND].backends,
        on_job=lambda job_id: runner().run_job(job_id),
    )


@app.command()
def chat(
    message: Annotated[
        str | None, typer.Argument(help="One command; omit for an interactive session.")
    ] = None,
    project: Annotated[str, typer.Option("--project", "-p", help="Project name.")] = "",
    resume: Annotated[int | None, typer.Option(help="Continue the conversation with this run id.")] = None,
    model: Annotated[str, typer.Option(help="Ollama model name, or a .gguf path.")] = DEFAULT_MODEL,
    constrained: Annotated[
        bool, typer.Option("--constrained", help="Schema-constrained replies (for weak models).")
    ] = False,
    model_answers: Annotated[
        bool,
        typer.Option(
            "--model-answers", help="Let the model word answers (strong models); default: tool results."
        ),
    ] = False,
    stack: Annotated[str | None, typer.Option(help="Vision stack: lite | full (default: setting).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the events as JSON lines.")] = False,
) -> None:
    """Ask the agent to label, count, find, rename, merge, delete, accept/reject, undo or export."""
    from agent.command import CommandAgent
    from agent.review import is_review_request
    from server.cli_review import review_session
    from store.db import new_session
    from store.projects import get_project_by_name
    from tools.catalog import command_tools

    if not project:
        raise _fail("--project is required")
    if message is not None and resume is None and is_review_request(message):
        # "review the flagged annotations with me": the review agent's session, in this terminal.
        review_session(
            project, message, model=model, stack=stack, threads=None, interactive=sys.stdin.isatty()
        )
        return
    settings = get_settings()
    engine = settings.open_store()
    handle = None
    try:
        with new_session(engine) as session:
            found = get_project_by_name(session, name=project)
        if found is None or found.id is None:
            raise _fail(
                f"no project named {project!r}; create it with `labelwright ingest SOURCE -p {project}`"
            )
        ctx = _context(engine, found.id, settings.home, settings.models_dir, stack or settings.stack, as_json)
        try:
            handle = connect(
                settings.models_dir,
                model,
                ollama_host=_ollama_host(),
                threads=settings.llm_thread_count,
                keep_alive=settings.llm_keep_alive_s or None,
            )
        except (LLMUnavailable, ValueError) as exc:
            raise _fail(str(exc)) from None
        options = {
            "client": handle.client,
            "model": handle.model,
            "ctx": ctx,
            "tools": command_tools(),
            "constrained": constrained,
            "model_answers": model_answers,
            "lexicon": merge(*LANGUAGES.values()),  # "sí", "borra ...": every language shipped, as serve
        }
        try:
            agent = (
                CommandAgent.resume(**options, run_id=resume)
                if resume is not None
                else CommandAgent.start(**options)
            )
        except (ValueError, OpError) as exc:
            raise _fail(str(exc)) from None
        if not as_json:
            console.print(
                f"[dim]conversation {agent.run_id} (continue it with --resume {agent.run_id})[/dim]"
            )
        show = printer(as_json)
        if message is not None:
            _turn(agent, message, show)
            return
        warming = threading.Thread(target=agent.warm_up, daemon=True)  # while the user types
        warming.start()
        while True:
            try:
                line = input("you> ")
            except EOFError:
                break
            if line.strip().lower() in ("exit", "quit"):
                break
            if line.strip():
                warming.join()
                _turn(agent, line, show)
    finally:
        if handle is not None:
            handle.close()
        engine.dispose()


def _turn(agent: Any, message: str, show: Any) -> None:
    try:
        agent.send(message, on_event=show)
    except LLMUnavailable as exc:
        raise _fail(str(exc)) from None


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(1)


if __name__ == "__main__":
    app()
