"""Serve the UI on its own for the browser test and manual checks.

``python -m tests.ui.live_app --home DIR [--models DIR] [--port N]`` mounts ``build_ui`` on a
FastAPI app with the real job runner and the lite stack, the way server/app.py will. It lives in
tests/ because it wires server.jobs, which ui/ must not import (see tests/test_layout.py).
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


def make_app(home: Path, models_dir: Path) -> tuple[FastAPI, JobRunner]:
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
    app = FastAPI()
    exports = home / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    return gr.mount_gradio_app(app, build_ui(services), path="/", allowed_paths=[str(exports)]), runner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--models", type=Path, default=None)
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args()
    home = args.home.absolute()
    app, runner = make_app(home, (args.models or home / "models").absolute())
    runner.start()
    try:
        uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
    finally:
        runner.stop()


if __name__ == "__main__":
    main()
