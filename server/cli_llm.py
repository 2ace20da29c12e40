"""`labelwright llm serve | ps | stop`: the embedded LLM as a server, and the shared CLI endpoint.

``serve`` runs the embedded LLM as a stand-alone Ollama-protocol server in the foreground. ``ps``
lists and ``stop`` ends the shared endpoint that ``labelwright chat`` starts and that otherwise
exits by itself after ``LABELWRIGHT_LLM_KEEP_ALIVE_S`` idle seconds (see agent.shared_llm).

Mount on the main CLI with ``app.add_typer(llm_app, name="llm")``. Any Ollama client can then use
it (``OLLAMA_HOST=http://127.0.0.1:11434``). The endpoint has no authentication, so it binds to
loopback unless ``--allow-network`` is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from agent.llm import DEFAULT_MODEL, MODEL_FILES, model_path
from server.settings import get_settings

app = typer.Typer(help="The local LLM behind an Ollama-compatible HTTP API.", no_args_is_help=True)
console = Console(stderr=True)


@app.callback()
def llm() -> None:
    """The local LLM behind an Ollama-compatible HTTP API."""


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind; loopback unless --allow-network.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port (Ollama's default is 11434).")] = 11434,
    model: Annotated[
        str, typer.Option(help=f"One of {', '.join(MODEL_FILES)}, or a path to a .gguf file.")
    ] = DEFAULT_MODEL,
    threads: Annotated[int, typer.Option(min=1, help="CPU threads for llama.cpp.")] = 2,
    ctx: Annotated[int, typer.Option(min=256, help="Context window in tokens.")] = 8192,
    models_dir: Annotated[
        Path | None, typer.Option(help="Weights cache (default: LABELWRIGHT_MODELS or <home>/models).")
    ] = None,
    allow_network: Annotated[
        bool, typer.Option("--allow-network", help="Allow a non-loopback host (the API has no auth).")
    ] = False,
) -> None:
    """Load the model with llama.cpp and serve /api/chat, /api/generate, /api/tags, /api/show."""
    from agent.ollama_api import check_bind_host  # FastAPI: not imported by every CLI command

    try:
        check_bind_host(host, allow_network)
        path = model_path(models_dir or get_settings().models_dir, model)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if not path.is_file():
        console.print(f"[red]no weights for {model}: expected {path} (run `labelwright models fetch`)[/red]")
        raise typer.Exit(1)

    import uvicorn

    from agent.embedded_llm import EmbeddedLLM
    from agent.ollama_api import create_app

    llm = EmbeddedLLM(path, name=model, threads=threads, n_ctx=ctx)
    console.print(
        f"{model} loaded from {path} (pre-read {llm.preread_s:.1f}s, load {llm.load_s:.1f}s); "
        f"serving the Ollama API on http://{host}:{port}"
    )
    try:
        uvicorn.run(create_app(llm), host=host, port=port, log_level="warning")
    finally:
        llm.close()


def _models_dir(models_dir: Path | None) -> Path:
    return models_dir or get_settings().models_dir


MODELS_DIR_OPTION = typer.Option(help="Weights cache (default: LABELWRIGHT_MODELS or <home>/models).")


@app.command()
def ps(models_dir: Annotated[Path | None, MODELS_DIR_OPTION] = None) -> None:
    """List the shared endpoints kept loaded for CLI calls (pid, address, model, idle timeout)."""
    import time

    from agent.shared_llm import list_endpoints

    endpoints = list_endpoints(_models_dir(models_dir))
    if not endpoints:
        console.print("no shared LLM endpoint is running")
    for e in endpoints:
        age = time.time() - e.started_at
        typer.echo(f"{e.model}\tpid {e.pid}\t{e.url}\tup {age:.0f}s\texits after {e.idle_timeout:.0f}s idle")


@app.command()
def stop(models_dir: Annotated[Path | None, MODELS_DIR_OPTION] = None) -> None:
    """Stop the shared LLM endpoint now instead of waiting for its idle timeout."""
    from agent.shared_llm import stop_endpoints

    stopped = stop_endpoints(_models_dir(models_dir))
    if not stopped:
        console.print("no shared LLM endpoint was running")
    for e in stopped:
        console.print(f"stopped {e.model} (pid {e.pid}, {e.url})")


if __name__ == "__main__":
    app()
