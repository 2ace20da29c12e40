"""Training a detector on a project's own labels, for a class COCO-80 does not have (coins), on
CPU with the network blocked: the held-out mAP@0.5 it reaches, its registration, labeling the
remaining images with it through ``labelwright label``, and cancel/resume between epochs.

Data: 60 real-photo composites (tests/tools/coins.py: coins cut from ``skimage.data.coins()`` onto
crops of skimage colour photos), 128 px; 48 labelled by hand (accepted), 12 left to label.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ops import annotations, jobs, training
from ops.annotations import NewAnnotation
from ops.caller import local_caller
from ops.unit import Env
from server.cli import app
from store.db import open_engine
from tests.tools.coins import Photo, make_photos
from tests.tools.no_network import blocked_network

pytestmark = pytest.mark.slow
SIZE, EPOCHS, STATED_MAP50 = 128, 40, 0.4
runner = CliRunner()
CALLER = local_caller("cli")


def _iou(a: list[float], b: list[float]) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w, h = max(0.0, min(ax2, bx2) - max(a[0], b[0])), max(0.0, min(ay2, by2) - max(a[1], b[1]))
    return w * h / (a[2] * a[3] + b[2] * b[3] - w * h)


@pytest.fixture
def coins(home: Path, tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A coins project: 48 photos with accepted boxes, 12 without; a models dir of its own (the
    lite files linked in) so registering a detector never touches the shared cache."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "lite").symlink_to(models_dir / "lite")
    monkeypatch.setenv("LABELWRIGHT_MODELS", str(models))
    from server.settings import get_settings

    get_settings.cache_clear()
    photos = make_photos(tmp_path / "photos", 60, size=SIZE)
    result = runner.invoke(app, ["ingest", str(tmp_path / "photos"), "--project", "coins", "--json"])
    assert result.exit_code == 0, result.output
    env = Env(open_engine(home / "labelwright.db"), home)
    pid = json.loads(result.stdout)["project_id"]
    ids = {a["file_name"]: a["image_id"] for a in json.loads(result.stdout)["added"]}
    for photo in photos[:48]:
        items = [NewAnnotation(label="coin", bbox=b, status="accepted") for b in photo.boxes]
        annotations.create(env, CALLER, pid, image_id=ids[photo.path.name], items=items)
    yield {"env": env, "pid": pid, "ids": ids, "photos": photos, "models": models}
    env.engine.dispose()


def test_a_trained_detector_finds_a_class_coco_lacks(coins: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    rest: list[Photo] = coins["photos"][48:]
    names = ",".join(p.path.name for p in rest)
    refused = runner.invoke(app, ["label", "--project", "coins", "--classes", "coin", "--images", names])
    assert refused.exit_code == 1 and "cannot detect 'coin'" in refused.output  # not a COCO-80 class
    started = time.perf_counter()
    with blocked_network():
        result = runner.invoke(app, ["train", "--project", "coins", "--epochs", str(EPOCHS), "--imgsz",
                                     str(SIZE), "--holdout", "0.25", "--device", "cpu", "--json"])  # fmt:skip
    seconds = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["state"] == "done" and report["epochs"] == EPOCHS
    assert (report["train_images"], report["val_images"]) == (36, 12)
    assert report["map50"] >= STATED_MAP50, report
    assert set(report["ap50"]) == {"coin"}
    print(f"held-out mAP@0.5 {report['map50']} after {EPOCHS} epochs in {seconds:.0f} s")
    from tools.models.trained import find

    model = find(coins["models"], f"project-{coins['pid']}-yolo")
    assert model.classes == ["coin"] and len(model.provenance["snapshot"]) == 64
    assert model.provenance["epochs"] == EPOCHS and model.provenance["base"] == "yolov8n.yaml"
    assert (coins["models"] / model.weights).is_file()

    from tools.models.trained import for_classes

    coco = {"person", "car"}.__contains__
    assert for_classes(coins["models"], coins["pid"], ["coin"], coco) == f"project-{coins['pid']}-yolo"
    assert for_classes(coins["models"], coins["pid"], ["person"], coco) is None  # lite sees people
    assert for_classes(coins["models"], coins["pid"] + 1, ["coin"], coco) is None  # not this project's

    import server.cli_label as cli_label

    real = cli_label.backends_factory

    def grabcut(stack: str, models_dir: Path, detector: str | None = None):  # ISNet costs 3 s a box on CPU
        def build():
            from tools.backends.stacks import build_backends

            return build_backends(stack, models_dir, detector=detector, segmenter="lite-grabcut")

        return build if detector else real(stack, models_dir, detector)

    monkeypatch.setattr(cli_label, "backends_factory", grabcut)
    detector = f"project-{coins['pid']}-yolo"
    labelled = runner.invoke(app, ["label", "--project", "coins", "--classes", "coin", "--images", names,
                                   "--detector", detector, "--threshold", "0.25", "--json"])  # fmt: skip
    assert labelled.exit_code == 0, labelled.output
    found = annotations.list_(coins["env"], CALLER, coins["pid"], status="proposed", limit=1000)
    assert found and all(a.model.startswith(f"project-{coins['pid']}-yolo") for a in found)
    truth = [(coins["ids"][p.path.name], b) for p in rest for b in p.boxes]
    hits = sum(any(a.image_id == i and _iou(a.bbox, b) >= 0.5 for a in found) for i, b in truth)
    print(
        f"labelled the {len(rest)} other photos: {hits} of {len(truth)} coins found (IoU >= 0.5), "
        f"{len(found)} boxes"
    )
    assert hits / len(truth) >= 0.5, (hits, len(truth))


def test_training_cancels_between_epochs_and_resumes(coins: dict) -> None:
    from server.jobs import JobRunner
    from tools.training import KIND, TrainJob, _epochs_done, workdir

    env, pid = coins["env"], coins["pid"]
    handler = TrainJob(home=env.home, models_dir=coins["models"], device="cpu")
    runner_ = JobRunner(env.engine, {KIND: handler}, lock_dir=env.home / "jobs")
    job = training.start_train(env, CALLER, pid, epochs=3, imgsz=SIZE, holdout=0.25)
    asked: list[int] = []

    def cancel_once(event) -> None:  # noqa: ANN001
        if event.done == 1 and event.state == "running" and not asked:
            asked.append(jobs.cancel(env, CALLER, pid, job.id).id)

    runner_.subscribe(cancel_once)
    with blocked_network():
        stopped = runner_.run_job(job.id)
        assert (stopped.state.value, stopped.cursor) == ("cancelled", 1)
        last = workdir(env.home, job.id) / "run" / "weights" / "last.pt"
        assert _epochs_done(last) == 1, "the checkpoint holds the one epoch done"
        jobs.resume(env, CALLER, pid, job.id)
        done = runner_.run_job(job.id)
    assert (done.state.value, done.cursor) == ("done", 3)
    assert done.params["result"]["model_id"] == f"project-{pid}-yolo-job{job.id}"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"epochs": 0}, "epochs must be in"), ({"imgsz": 100}, "imgsz must be"),
     ({"base": "yolo.txt"}, "base must be"), ({"holdout": 0.9}, "holdout must be"),
     ({"base": "yolov8n.pt"}, "not a file here")],
)  # fmt: skip
def test_bad_training_input_is_refused(coins: dict, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        training.start_train(coins["env"], CALLER, coins["pid"], **kwargs)
