"""Serve the UI on its own for the browser test and manual checks.

``python -m tests.ui.live_app --home DIR [--models DIR] [--port N] [--agent]`` mounts ``build_ui``
on a FastAPI app with the real job runner and the lite stack, the way server/app.py will; with
``--agent`` the chat talks to the command agent on the embedded LLM. It lives in tests/ because it
wires server.jobs, which ui/ must not import (see tests/test_layout.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import gradio as gr
import uvicorn
from fastapi import FastAPI

from server.jobs import JobRunner
from store.db import open_engine
from tools.auto_label import KIND, LabelJob
from ui.app import build_ui
from ui.services import UIServices


def lite(models_dir: Path) -> Any:
    from tools.backends.stacks import build_backends

    return build_backends("lite", models_dir)


def agent_chat(models_dir: Path) -> tuple[Any, Any]:
    """A ``chat(project_id, message, on_event)`` backed by one CommandAgent per project, and the
    LLM handle to close (the embedded llama.cpp model unless an Ollama is configured)."""
    from agent.command import CommandAgent
    from agent.llm import connect
    from tools.catalog import command_tools

    handle = connect(models_dir)
    agents: dict[int, CommandAgent] = {}

    def factory(services: UIServices) -> Any:
        def chat(project_id: int, message: str, on_event: Any) -> None:
            if project_id not in agents:
                agents[project_id] = CommandAgent.start(
                    handle.client, handle.model, services.tool_context(project_id), command_tools()
                )
            agents[project_id].send(message, on_event)

        return chat

    return factory, handle


def make_app(home: Path, models_dir: Path, *, agent: bool = False) -> tuple[FastAPI, JobRunner, Any]:
    engine = open_engine(home / "labelwright.db")
    handler = LabelJob(home=home, backends_factory=lambda: lite(models_dir), author="auto_label")
    runner = JobRunner(engine, {KIND: handler}, lock_dir=home / "jobs")
    services = UIServices(
        engine=engine,
        home=home,
        models_dir=models_dir,
        backends_factory=lambda: lite(models_dir),
        jobs=runner,
    )
    handle = None
    if agent:
        factory, handle = agent_chat(models_dir)
        services.chat = factory(services)
    app = FastAPI()
    exports = home / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    app = gr.mount_gradio_app(app, build_ui(services), path="/", allowed_paths=[str(exports)])
    return app, runner, handle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--models", type=Path, default=None)
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--agent", action="store_true", help="chat with the command agent (embedded LLM)")
    args = parser.parse_args()
    home = args.home.absolute()
    app, runner, handle = make_app(home, (args.models or home / "models").absolute(), agent=args.agent)
    runner.start()
    try:
        uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
    finally:
        runner.stop()
        if handle is not None:
            handle.close()


if __name__ == "__main__":
    main()
