"""End to end: `labelwright chat` on real photos with the real lite stack and the embedded Qwen.

One interactive session (one model load): label every pedestrian, a count question, a rename, a
bulk delete that waits for "yes", and an undo; judged by the store and the printed results. Slow.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from agent.llm import model_path
from store.db import new_session, open_engine
from tests.agent.devset import World

pytestmark = [pytest.mark.slow]
COMMANDS = [
    "Label every pedestrian.",
    "How many pedestrian annotations are there?",
    "Rename the class pedestrian to person.",
    "Delete all person annotations.",
    "yes",
    "Undo the last change.",
]


@pytest.mark.timeout(3600)
def test_chat_session_on_real_photos(
    home: Path, photos: dict[str, Path], models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.cli_chat import app
    from store.ingest import ingest
    from store.models import Image

    if not model_path(models_dir, "qwen2.5-coder:1.5b").is_file():
        pytest.skip(f"no Qwen weights in {models_dir}")
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    monkeypatch.setenv("LABELWRIGHT_LLM_KEEP_ALIVE_S", "0")  # in-process: nothing left running after
    # The CLI's llama.cpp threads: the test session's (CI: 2, alone on the machine), not the
    # product's one-on-2-cores default, which is there for a server sharing its cores.
    monkeypatch.setenv("LABELWRIGHT_LLM_THREADS", os.environ.get("LABELWRIGHT_TEST_LLM_THREADS", "1"))
    source = tmp_path / "src"
    source.mkdir()
    for path in photos.values():
        shutil.copy(path, source / path.name)
    engine = open_engine(home / "labelwright.db")
    with new_session(engine) as session:
        ingest(session, home=home, project_name="streets", source=source)
        images = {i.file_name: i.id for i in session.exec(select(Image))}
    world = World(engine, home, 1, images)  # type: ignore[arg-type]

    result = CliRunner().invoke(
        app, ["--project", "streets", "--stack", "lite"], input="\n".join(COMMANDS) + "\n"
    )
    out = result.output
    print(out)
    assert result.exit_code == 0, out
    labeled = re.search(r"job \d+ done: 2/2 images, (\d+) pedestrian proposed", out)
    assert labeled, "the labeling job reported its outcome"
    n = int(labeled.group(1))
    assert n >= 4  # bus.jpg alone shows four people
    assert re.search(rf"Applied: done: delete {n} annotations", out), "the delete waited for yes, then ran"
    assert f"undone: delete {n} annotations" in out
    counts = world.counts()
    assert counts.get("person") == n and counts.get("pedestrian", 0) == 0, (
        counts
    )  # renamed, deleted, restored
