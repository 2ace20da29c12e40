"""A video through the CLI: ingest --fps, label (video detected, tracks), export coco-video and mot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from server import cli, cli_label
from tests.store.video_clips import moving_squares
from tests.tools.test_video_label import Backends

RUN = CliRunner()


@pytest.fixture
def fake_stack(monkeypatch: pytest.MonkeyPatch) -> Backends:
    backends = Backends()
    monkeypatch.setattr(cli_label, "backends_factory", lambda *_, **__: lambda: backends)
    return backends


def test_ingest_label_export_a_clip(home: Path, tmp_path: Path, fake_stack: Backends) -> None:
    clip = moving_squares(tmp_path / "street.mp4", frames=20, fps=10)
    ingested = RUN.invoke(cli.app, ["ingest", str(clip), "--project", "traffic", "--fps", "5", "--json"])
    assert ingested.exit_code == 0, ingested.output
    (video,) = json.loads(ingested.stdout)["videos"]
    assert (video["file_name"], video["frames"]) == ("street.mp4", 10)

    labeled = RUN.invoke(cli_label.app, ["label", "--project", "traffic", "--classes", "person", "--json"])
    assert labeled.exit_code == 0, labeled.output
    data = json.loads(labeled.stdout)
    assert (data["state"], data["done"], data["total"], data["tracks"]) == ("done", 10, 10, 3)
    assert data["annotations"] == {"person": 2 * 10 + 5}

    out = tmp_path / "traffic.json"
    exported = RUN.invoke(cli.app, ["export", "-p", "traffic", "--format", "coco-video", "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    coco = json.loads(out.read_text())
    assert len(coco["tracks"]) == 3 and {a["track_id"] for a in coco["annotations"]} == {
        t["id"] for t in coco["tracks"]
    }
    mot = RUN.invoke(cli.app, ["export", "-p", "traffic", "--format", "mot", "--out", str(tmp_path / "mot")])
    assert mot.exit_code == 0, mot.output
    table = np.loadtxt(tmp_path / "mot" / "street.txt", delimiter=",", ndmin=2)
    assert table.shape == (25, 10) and sorted(set(table[:, 0])) == [1, 3, 5, 7, 9, 11, 13, 15, 17, 19]


def test_label_refuses_images_option_for_videos(home: Path, tmp_path: Path, fake_stack: Backends) -> None:
    clip = moving_squares(tmp_path / "street.mp4", frames=4)
    assert RUN.invoke(cli.app, ["ingest", str(clip), "--project", "traffic"]).exit_code == 0
    result = RUN.invoke(
        cli_label.app,
        ["label", "-p", "traffic", "--classes", "person", "--images", "street.mp4/frame_000001.jpg"],
    )
    assert result.exit_code == 1 and "a video job labels every sampled frame" in result.output
