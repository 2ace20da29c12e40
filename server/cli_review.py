"""`labelwright review --project P [MESSAGE]`: work through the audit findings with the review agent.

With a message, one turn is run and printed; without, a prompt loop runs until "quit" or Ctrl-D.
Mount on the main CLI with ``app.add_typer(cli_review.app, name="review")``; ``python -m
server.cli_review`` runs this module's own ``app``. The LLM is a real Ollama at ``OLLAMA_HOST``
when it answers and has the model, else the embedded one (``agent.llm.connect``).
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from rich.console import Console

from agent.events import AssistantText, Event, Final, ToolCall, ToolResult
from agent.llm import DEFAULT_MODEL, LLMUnavailable
from server.cli_ops import CLI
from server.settings import get_settings
from store.db import new_session

app = typer.Typer(help="Review flagged annotations with the review agent.", add_completion=False)
console = Console(stderr=True)
out = Console()
QUIT = {"quit", "exit", "q", "bye"}


def _escape(text: str) -> str:
    return text.replace("[", r"\[")


def show(event: Event) -> None:
    """Tool calls and results dimmed on stderr; the agent's words on stdout."""
    if isinstance(event, ToolCall):
        args = ", ".join(f"{k}={v!r}" for k, v in event.args.items())
        console.print(f"[dim]-> {event.name}({_escape(args)})[/dim]")
    elif isinstance(event, ToolResult):
        colour = "red" if event.error else "dim"
        console.print(f"[{colour}]{_escape(event.text)}[/{colour}]")
    elif isinstance(event, AssistantText | Final):
        out.print(_escape(event.text))


@app.callback(invoke_without_command=True)
def review(
    project: Annotated[str, typer.Option("--project", "-p", help="Project name.")],
    message: Annotated[str | None, typer.Argument(help="One message; none: an interactive session.")] = None,
    model: Annotated[str, typer.Option(help="LLM name (Ollama) or a .gguf path.")] = DEFAULT_MODEL,
    stack: Annotated[str | None, typer.Option(help="Model stack for resegment: lite | full.")] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            min=1, help="CPU threads for the embedded LLM (default: LABELWRIGHT_LLM_THREADS, else cores - 1)."
        ),
    ] = None,
) -> None:
    """Review the project's open findings: "next", "that one is a truck", "fine as it is", ..."""
    review_session(project, message, model=model, stack=stack, threads=threads, interactive=message is None)


def review_session(
    project: str,
    message: str | None,
    *,
    model: str,
    stack: str | None,
    threads: int | None,
    interactive: bool,
) -> None:
    """Run ``message`` (if any) through the review agent, then a prompt loop when ``interactive``.

    `labelwright chat` hands review requests ("review the flagged annotations with me") here.
    """
    from agent.llm import connect, warm_up
    from agent.review import SYSTEM, ReviewSession
    from store.projects import get_project_by_name
    from tools.backends.stacks import build_backends
    from tools.registry import ToolContext
    from tools.review_tools import ReviewState, review_tools

    settings = get_settings()
    engine = settings.open_store()
    with new_session(engine) as session:
        found = get_project_by_name(session, name=project)
    if found is None or found.id is None:
        console.print(f"[red]error:[/red] no project named {_escape(project)!r}")
        raise typer.Exit(1)
    models_dir = settings.models_dir
    ctx = ToolContext(
        engine=engine,
        project_id=found.id,
        home=settings.home,
        models_dir=models_dir,
        caller=CLI,
        backends_factory=lambda: build_backends(stack or settings.stack, models_dir),
    )
    try:
        handle = connect(
            models_dir,
            model,
            ollama_host=os.environ.get("OLLAMA_HOST"),
            threads=threads or settings.llm_thread_count,
        )
    except (LLMUnavailable, ValueError) as exc:
        console.print(f"[red]error:[/red] {_escape(str(exc))}")
        raise typer.Exit(1) from None
    talk = ReviewSession(handle.client, handle.model, ctx)
    try:
        if message is not None:
            _turn(talk, message)
        if not interactive:
            return
        warm_up(handle.client, handle.model, SYSTEM, review_tools(ReviewState()).schemas())
        console.print('review session: "next", "fine as it is", "that one is a truck", ... "quit" ends it')
        while True:
            try:
                text = input("review> ").strip()
            except (EOFError, KeyboardInterrupt):
                break
            if text.lower() in QUIT:
                break
            if text:
                _turn(talk, text)
    finally:
        handle.close()
        engine.dispose()


def _turn(talk: Any, text: str) -> None:
    try:
        talk.send(text, on_event=show)
    except LLMUnavailable as exc:
        console.print(f"[red]error:[/red] {_escape(str(exc))}")
        raise typer.Exit(1) from None


if __name__ == "__main__":
    app()
