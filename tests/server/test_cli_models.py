"""`labelwright models list|fetch|import|verify` through typer's runner, on a temporary models dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from server import cli_models
from server.settings import get_settings
from tests.tools.test_models_manage import flip_a_byte, torch_like_checkpoint

RUN = CliRunner()


def models(*args: str):
    return RUN.invoke(cli_models.app, list(args))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "models"


def fetch_labels(root: Path, tmp_path: Path):
    return models(
        "fetch", "coco80-labels", "--models-dir", str(root), "--cache", str(tmp_path / "cache"), "--json"
    )


def test_fetch_then_list_json(root: Path, tmp_path: Path) -> None:
    first = fetch_labels(root, tmp_path)
    assert first.exit_code == 0, first.output
    assert [r["action"] for r in json.loads(first.stdout)] == ["built"]
    assert [r["action"] for r in json.loads(fetch_labels(root, tmp_path).stdout)] == ["present"]

    listed = models("list", "--stack", "lite", "--models-dir", str(root), "--json")
    assert listed.exit_code == 0, listed.output
    rows = {r["id"]: r for r in json.loads(listed.stdout)}
    assert rows["coco80-labels"]["state"] == "present" and rows["centernet"]["state"] == "missing"
    assert {r["stack"] for r in rows.values()} == {"lite"}
    assert "tower_0/detections:0" in rows["centernet"]["notes"]


def test_list_table_names_every_model(root: Path) -> None:
    result = models("list", "--models-dir", str(root))
    assert result.exit_code == 0, result.output
    for model_id in ("centernet", "qwen2.5-coder-1.5b", "sam2.1-hiera-base-plus", "ollama"):
        assert model_id in result.stdout


def test_models_dir_comes_from_settings(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fetch_labels(root, tmp_path)
    monkeypatch.setenv("LABELWRIGHT_MODELS", str(root))
    get_settings.cache_clear()
    try:
        rows = {r["id"]: r for r in json.loads(models("list", "--json").stdout)}
    finally:
        get_settings.cache_clear()
    assert rows["coco80-labels"]["path"] == str(root / "lite/coco80.json")
    assert rows["coco80-labels"]["state"] == "present"


def test_verify_exits_1_on_a_corrupt_file(root: Path, tmp_path: Path) -> None:
    fetch_labels(root, tmp_path)
    ok = models("verify", "coco80-labels", "--models-dir", str(root), "--json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)[0]["verdict"] == "ok"
    flip_a_byte(root / "lite/coco80.json")
    bad = models("verify", "--models-dir", str(root), "--json")
    assert bad.exit_code == 1
    verdicts = {v["id"]: v["verdict"] for v in json.loads(bad.stdout)}
    assert verdicts["coco80-labels"] == "corrupt" and verdicts["centernet"] == "missing"


def test_import_reports_recognised_rejected_and_unknown(root: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    torch_like_checkpoint(src / "sam2.1_hiera_tiny.pt")
    (src / "yolov8s-worldv2.pt").write_text("not a checkpoint")
    (src / "weights.ckpt").write_bytes(b"?")
    result = models("import", str(src), "--models-dir", str(root))
    assert result.exit_code == 1  # one file was rejected
    assert "imported: sam2.1_hiera_tiny.pt" in result.stdout
    assert "rejected:" in result.stdout and "yolov8s-worldv2.pt" in result.stdout
    assert "unrecognised:" in result.stdout and "weights.ckpt" in result.stdout
    assert (root / "full/sam2.1_hiera_tiny.pt").is_file()

    (src / "yolov8s-worldv2.pt").unlink()
    again = models("import", str(src), "--models-dir", str(root), "--json")
    assert again.exit_code == 0
    assert [i["copied"] for i in json.loads(again.stdout)["imported"]] == [False]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["fetch", "sam2.1-hiera-large"], 1, "labelwright models import"),
        (["fetch", "yolo"], 2, "unknown model id 'yolo'"),
        (["verify", "nope"], 2, "unknown model id 'nope'"),
        (["import", "/nonexistent/dir"], 2, "expected a directory"),
    ],
)
def test_bad_requests_fail_clearly(root: Path, args: list[str], code: int, message: str) -> None:
    result = models(*args, "--models-dir", str(root))
    assert result.exit_code == code
    assert message in " ".join(result.output.split())
