"""`labelwright chat`'s tool context: the job runner is built when a job runs, not for a count."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from server import cli_chat, cli_label
from store.db import open_engine
from tools.auto_label import KIND


def test_the_job_runner_is_built_on_first_use_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[tuple[Any, ...]] = []
    ran: list[int] = []

    def make_runner(*args: Any) -> Any:
        built.append(args)
        label_job = SimpleNamespace(backends="the lite stack")
        return SimpleNamespace(subscribe=lambda fn: None, run_job=ran.append, handlers={KIND: label_job})

    monkeypatch.setattr(cli_label, "make_runner", make_runner)
    engine = open_engine(tmp_path / "labelwright.db")
    ctx = cli_chat._context(engine, 1, tmp_path, tmp_path / "models", "lite", quiet=True)
    assert built == [], "a context for a count must not build the runner (it imports the web app)"
    ctx.on_job(7)
    ctx.on_job(8)
    assert ran == [7, 8] and len(built) == 1, "one runner, built by the first job, runs every job"
    assert ctx.backends == "the lite stack" and len(built) == 1
    engine.dispose()
