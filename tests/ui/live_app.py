"""Serve the UI on its own for the browser test and manual checks.

``python -m tests.ui.live_app --home DIR [--models DIR] [--port N] [--agent] [--network]
[--segmenter ID]`` serves on 127.0.0.1. Without ``--network`` it mounts ``build_ui`` on a bare
FastAPI app with the real job runner (photo and video labeling) and the lite stack, as the local
user of a loopback server (no login); with ``--agent`` the chat talks to the command agent on the
embedded LLM; ``--segmenter lite-grabcut`` swaps the slow ISNet for GrabCut (the video test).
With ``--network`` it serves the real server app (``server.app.create_app`` +
``server.ui_mount.mount_ui``) with local mode off, as on a network bind: /login, users and roles
from the store in ``--home``. It lives in tests/ because it wires server/, which ui/ must not
import (see tests/test_layout.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import gradio as gr
import uvicorn
from fastapi import FastAPI

from server.app import SharedBackends
from server.jobs import JobRunner
from server.ui_mount import AgentChat
from store.db import open_engine
from tools import video_label
from tools.auto_label import KIND, LabelJob
from ui.app import build_ui
from ui.services import UIServices


def lite(models_dir: Path, segmenter: str | None = None) -> Any:
    from tools.backends.stacks import build_backends

    return build_backends("lite", models_dir, segmenter=segmenter)


def make_app(
    home: Path, models_dir: Path, *, agent: bool = False, segmenter: str | None = None
) -> tuple[FastAPI, JobRunner, AgentChat | None]:
    """The loopback app: (app, the runner to start and stop, the agent chat whose LLM to close)."""
    engine = open_engine(home / "labelwright.db")
    backends = SharedBackends(lambda: lite(models_dir, segmenter))  # one stack for the UI and the runner
    handlers = {
        KIND: LabelJob(home=home, backends_factory=backends),
        video_label.KIND: video_label.VideoLabelJob(home=home, backends_factory=backends),
    }
    runner = JobRunner(engine, handlers, lock_dir=home / "jobs")
    services = UIServices(engine=engine, home=home, models_dir=models_dir, backends=backends)
    chat = None
    if agent:
        from server.settings import Settings

        chat = AgentChat(Settings(home=home, models=models_dir), services)
        services.chat = chat
    app = FastAPI()
    exports = home / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    app = gr.mount_gradio_app(app, build_ui(services), path="/", allowed_paths=[str(exports)])
    return app, runner, chat


def network_app(home: Path, models_dir: Path) -> FastAPI:
    """The real server app with login required (its lifespan runs the job runner)."""
    from server.app import create_app
    from server.settings import Settings
    from server.ui_mount import mount_ui

    settings = Settings(home=home, models=models_dir, host="127.0.0.1", local_mode=False)
    return create_app(settings, mount_ui=lambda api: mount_ui(settings, api))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--models", type=Path, default=None)
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--agent", action="store_true", help="chat with the command agent (embedded LLM)")
    parser.add_argument("--network", action="store_true", help="serve as on a network bind: login required")
    parser.add_argument("--segmenter", default=None, help="another lite segmenter, e.g. lite-grabcut (fast)")
    args = parser.parse_args()
    home = args.home.absolute()
    models_dir = (args.models or home / "models").absolute()
    if args.network:
        uvicorn.run(network_app(home, models_dir), host="127.0.0.1", port=args.port, log_level="warning")
        return
    app, runner, chat = make_app(home, models_dir, agent=args.agent, segmenter=args.segmenter)
    runner.start()
    try:
        uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
    finally:
        runner.stop()
        if chat is not None:
            chat.close()


if __name__ == "__main__":
    main()
