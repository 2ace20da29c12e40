"""``labelwright calibrate`` and ``labelwright review-queue`` on a planted real-photo project
(``train`` is tests/tools/test_training.py, marked slow)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ops import annotations
from server.cli import app
from tests.ops.planted import CALLER, plant

runner = CliRunner()


def test_calibrate_reports_then_applies_as_one_undoable_change(home: Path, photos: dict[str, Path]) -> None:
    p = plant(home, photos, n=1000, reviewed=0.5, findings=20)
    report = runner.invoke(app, ["calibrate", "--project", "planted", "--precision", "0.8", "--json"])
    assert report.exit_code == 0, report.output
    (car,) = json.loads(report.stdout)["classes"]
    assert car["label"] == "car" and car["accept_above"] is not None and car["to_accept"] > 0
    before = annotations.count(p.env, CALLER, p.project_id, by="status")
    applied = runner.invoke(
        app, ["calibrate", "--project", "planted", "--precision", "0.8", "--apply", "--yes"]
    )
    assert applied.exit_code == 0, applied.output
    assert "auto-accept" in applied.output and "undo" in applied.output
    after = annotations.count(p.env, CALLER, p.project_id, by="status")
    assert after["accepted"] == before["accepted"] + car["to_accept"]
    assert runner.invoke(app, ["undo", "--project", "planted"]).exit_code == 0
    assert annotations.count(p.env, CALLER, p.project_id, by="status") == before

    queue = runner.invoke(app, ["review-queue", "--project", "planted", "--next", "5", "--json"])
    assert queue.exit_code == 0, queue.output
    items = json.loads(queue.stdout)
    assert len(items) == 5 and items[0]["p_wrong"] >= items[-1]["p_wrong"]
    images = runner.invoke(app, ["review-queue", "--project", "planted", "--by", "image", "--json"])
    assert len({i["image_id"] for i in json.loads(images.stdout)}) == 6
    bad = runner.invoke(app, ["review-queue", "--project", "planted", "--focus", "fun"])
    assert bad.exit_code == 1 and "focus must be" in bad.output
    p.env.engine.dispose()
