"""Label by example on real photos of a class no model knows (coins pasted on scikit-image photos,
tests/tools/coins.py): a person boxes the coins of one photo, and ``label_by_example`` finds
similar regions in the others with the lite verifier's EfficientNet features, through an ordinary
labeling job (the stack's COCO detector never loads). Plus the pure parts: windows and NMS.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from ops import annotations, jobs
from ops.annotations import NewAnnotation
from ops.caller import local_caller
from ops.unit import Env
from server.cli import app
from store.db import open_engine
from tests.tools.coins import make_photos
from tools.backends.by_example import iou, nms, window_sizes, windows
from tools.registry import ToolContext, ToolError

CALLER = local_caller("cli")
PHOTOS, SIZE = 7, 128


def _iou_xywh(a: list[float], b: list[float]) -> float:
    return float(iou(np.asarray([a[0], a[1], a[0] + a[2], a[1] + a[3]]),
                     np.asarray([[b[0], b[1], b[0] + b[2], b[1] + b[3]]]))[0])  # fmt: skip


def test_windows_cover_the_image_at_the_examples_sizes() -> None:
    sizes = window_sizes([(40, 20)])
    assert sizes == [(32, 16), (40, 20), (50, 25)]
    assert window_sizes([(30, 30), (60, 60)]) == [(30, 30), (36, 36), (45, 45), (56, 56), (60, 60)]
    boxes = windows((100, 60, 3), [(40, 20)])
    assert boxes[:, 2].max() == 60 and boxes[:, 3].max() == 100 and boxes[:, :2].min() == 0
    assert len(window_sizes([(10 * i, 10 * i) for i in range(1, 6)])) == 5  # at most MAX_SIZES
    picked = nms(np.asarray([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32),
                 np.asarray([0.5, 0.9, 0.7], np.float32))  # fmt: skip
    assert picked == [1, 2]


@pytest.fixture
def coins(home: Path, tmp_path: Path) -> Any:
    photos = make_photos(tmp_path / "photos", PHOTOS, size=SIZE, seed=5)
    result = CliRunner().invoke(app, ["ingest", str(tmp_path / "photos"), "--project", "coins", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    env = Env(open_engine(home / "labelwright.db"), home)
    yield env, out["project_id"], {a["file_name"]: a["image_id"] for a in out["added"]}, photos
    env.engine.dispose()


def test_boxed_coins_find_the_others(coins: Any, models_dir: Path) -> None:
    from server.jobs import JobRunner
    from tools.auto_label import KIND, LabelJob
    from tools.backends.stacks import build_backends
    from tools.by_example import TOOL

    env, pid, ids, photos = coins
    stack = build_backends("lite", models_dir, segmenter="lite-grabcut", threads=1)  # 1: shared CPUs
    runner = JobRunner(env.engine, {KIND: LabelJob(home=env.home, backends_factory=lambda: stack)},
                       lock_dir=env.home / "jobs")  # fmt: skip
    ctx = ToolContext(engine=env.engine, project_id=pid, home=env.home, models_dir=models_dir, caller=CALLER,
                      backends_factory=lambda: stack, on_job=runner.run_job)  # fmt: skip
    with pytest.raises(ToolError, match="no class 'coin'"):
        TOOL(ctx, {"label": "coin"})
    example = max(photos, key=lambda p: len(p.boxes))  # the person boxes every coin of one photo
    boxed = [NewAnnotation(label="coin", bbox=b) for b in example.boxes]
    drawn = annotations.create(env, CALLER, pid, image_id=ids[example.path.name], items=boxed)
    result = TOOL(ctx, {"label": "coin"})
    assert result.examples == sorted((a.id for a in drawn), reverse=True) and result.images == PHOTOS - 1
    job = jobs.get(env, CALLER, pid, result.job_id)
    assert job.state == "done" and job.params["examples"] == result.examples
    assert "detector" not in vars(stack), "the COCO detector never loaded"
    found = [a for a in annotations.list_(env, CALLER, pid, limit=1000) if a.job_id == result.job_id]
    assert found and all(a.model.startswith("by-example+lite-efficientnet") and a.score for a in found)
    truth = [(ids[p.path.name], b) for p in photos if p is not example for b in p.boxes]
    best = [max((_iou_xywh(a.bbox, b) for a in found if a.image_id == i), default=0.0) for i, b in truth]
    hits = sum(v >= 0.5 for v in best)
    right = sum(any(a.image_id == i and _iou_xywh(a.bbox, b) >= 0.5 for i, b in truth) for a in found)
    top = sorted(found, key=lambda a: -a.score)[: len(truth)]
    top_right = sum(any(a.image_id == i and _iou_xywh(a.bbox, b) >= 0.5 for i, b in truth) for a in top)
    print(f"by example ({len(drawn)} boxes): {hits} of {len(truth)} coins found at IoU >= 0.5, "
          f"{right} of {len(found)} proposals right, {top_right} of the {len(top)} best-scored")  # fmt: skip
    sizes = window_sizes([(int(b[3]), int(b[2])) for b in example.boxes])
    chance = np.mean([  # the share of the searched windows that are right: what a random pick gets
        max(_iou_xywh([x1, y1, x2 - x1, y2 - y1], b) for b in p.boxes) >= 0.5
        for p in photos if p is not example for x1, y1, x2, y2 in windows((SIZE, SIZE), sizes)
    ])  # fmt: skip
    print(f"a random window of those sizes is right {chance:.1%} of the time")
    assert hits >= len(truth) / 3 and right / len(found) >= 3 * chance, (hits, len(truth), right, len(found))
