"""Labeling and auditing with the detector trained on the project's own labels, for a class COCO-80
does not have (coins, tests/tools/coins.py): ``labelwright label --detector project:<name>``,
``labelwright audit --detector project:<name>``, and the chat's "label the rest with the detector
trained on this project" (a scripted model calling ``label_with_project_detector``).

The detector is trained once for the module with the real ultralytics code, kept tiny (the build
machine's CPUs are shared): 2 epochs at 64 px on 10 labelled photos. It is not meant to be good
(tests/tools/test_training.py measures that); a spy on its ``detect`` shows that it, and not the
stack's COCO detector, is what ran on each unlabelled photo.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ops import annotations, jobs
from ops.annotations import NewAnnotation
from ops.caller import local_caller
from ops.unit import Env
from server.cli import app
from store.db import open_engine
from tests.tools.coins import make_photos
from tools.registry import ToolContext, ToolError

SIZE, EPOCHS, LABELLED, PHOTOS = 64, 2, 10, 16
runner = CliRunner()
CALLER = local_caller("cli")


@pytest.fixture(scope="module")
def coins(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[dict[str, Any]]:
    """A coins project (10 photos with accepted boxes, 6 without) and a detector trained on it, in a
    models dir of its own (the lite files linked in)."""
    from server.settings import get_settings

    root = tmp_path_factory.mktemp("label-trained")
    models = root / "models"
    models.mkdir()
    (models / "lite").symlink_to(models_dir / "lite")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LABELWRIGHT_HOME", str(root / "home"))
        mp.setenv("LABELWRIGHT_MODELS", str(models))
        get_settings.cache_clear()
        photos = make_photos(root / "photos", PHOTOS, size=96, seed=3)
        ingested = runner.invoke(app, ["ingest", str(root / "photos"), "--project", "coins", "--json"])
        assert ingested.exit_code == 0, ingested.output
        out = json.loads(ingested.stdout)
        pid, ids = out["project_id"], {a["file_name"]: a["image_id"] for a in out["added"]}
        env = Env(open_engine(root / "home" / "labelwright.db"), root / "home")
        for photo in photos[:LABELLED]:
            items = [NewAnnotation(label="coin", bbox=b, status="accepted") for b in photo.boxes]
            annotations.create(env, CALLER, pid, image_id=ids[photo.path.name], items=items)
        # offline by construction; tests/tools/test_training.py trains with the network blocked
        trained = runner.invoke(app, ["train", "--project", "coins", "--epochs", str(EPOCHS), "--imgsz",
                                      str(SIZE), "--device", "cpu", "--json"])  # fmt: skip
        assert trained.exit_code == 0, trained.output
        report = json.loads(trained.stdout)
        assert report["state"] == "done" and report["model_id"] == f"project-{pid}-yolo-job{report['job_id']}"
        rest = [ids[p.path.name] for p in photos[LABELLED:]]
        yield {
            "env": env,
            "pid": pid,
            "ids": ids,
            "rest": rest,
            "models": models,
            "model": report["model_id"],
        }
        env.engine.dispose()
    get_settings.cache_clear()


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records the model id of every project-detector ``detect`` call (and lets it run)."""
    from tools.backends.project_yolo import ProjectYOLODetector

    seen: list[str] = []
    real = ProjectYOLODetector.detect

    def detect(self: ProjectYOLODetector, image: Any, prompts: list[str], threshold: float) -> Any:
        seen.append(self.model_id)
        return real(self, image, prompts, threshold)

    monkeypatch.setattr(ProjectYOLODetector, "detect", detect)
    return seen


@pytest.fixture
def settings_env(coins: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The module's home and models dir as the CLI's settings, GrabCut masks (ISNet: 3 s a box)."""
    import server.cli_label as cli_label
    from server.settings import get_settings

    monkeypatch.setenv("LABELWRIGHT_HOME", str(coins["env"].home))
    monkeypatch.setenv("LABELWRIGHT_MODELS", str(coins["models"]))
    get_settings.cache_clear()

    def grabcut(stack: str, models_dir: Path, detector: str | None = None) -> Any:
        from tools.backends.stacks import build_backends

        return lambda: build_backends(stack, models_dir, detector=detector, segmenter="lite-grabcut")

    monkeypatch.setattr(cli_label, "backends_factory", grabcut)
    return coins


def labelled_by(env: Env, pid: int, job_id: int) -> list[Any]:
    return [a for a in annotations.list_(env, CALLER, pid, limit=1000) if a.job_id == job_id]


def test_label_with_the_detector_named_by_project(settings_env: dict[str, Any], spy: list[str]) -> None:
    c = settings_env
    chosen = c["rest"][:3]  # the chat test labels the others
    rest = ",".join(str(i) for i in chosen)
    done = runner.invoke(app, ["label", "--project", "coins", "--classes", "coin", "--images", rest,
                               "--detector", "project:coins", "--threshold", "0.01", "--json"])  # fmt: skip
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert summary["state"] == "done" and summary["done"] == len(chosen)
    assert summary["params"]["detector"] == f"project-{c['pid']}-yolo"
    assert len(spy) == len(chosen) + 1  # the vocabulary check, then one pass per photo
    assert all(
        a.model.startswith(f"project-{c['pid']}-yolo")
        for a in labelled_by(c["env"], c["pid"], summary["job_id"])
    )
    unknown = runner.invoke(
        app, ["label", "--project", "coins", "--classes", "coin", "--detector", "project:nope"]
    )
    assert unknown.exit_code == 1 and "no project named 'nope'" in unknown.output


def test_audit_checks_for_missed_coins_with_the_project_detector(
    settings_env: dict[str, Any], spy: list[str]
) -> None:
    plain = runner.invoke(app, ["audit", "--project", "coins", "--json"])
    assert plain.exit_code == 0, plain.output
    assert spy == [], "the lite detector cannot look for coins: no project detector without --detector"
    audited = runner.invoke(app, ["audit", "--project", "coins", "--detector", "project:coins", "--json"])
    assert audited.exit_code == 0, audited.output
    assert spy and set(spy) == {settings_env["model"]}, "the project detector looked for missed coins"
    assert isinstance(json.loads(audited.stdout), list)
    both = runner.invoke(app, ["audit", "--project", "coins", "--no-models", "--detector", "project:coins"])
    assert both.exit_code == 1 and "cannot go with --no-models" in both.output


def test_the_chat_labels_the_rest_with_the_project_detector(coins: dict[str, Any], spy: list[str]) -> None:
    from agent.command import CommandAgent
    from server.jobs import JobRunner
    from tests.agent.conftest import ScriptedModel, call
    from tools.auto_label import KIND, LabelJob
    from tools.backends.stacks import build_backends
    from tools.catalog import command_tools

    env, pid = coins["env"], coins["pid"]
    stack = build_backends("lite", coins["models"], segmenter="lite-grabcut")  # what `chat` runs on
    job_runner = JobRunner(env.engine, {KIND: LabelJob(home=env.home, backends_factory=lambda: stack)},
                           lock_dir=env.home / "jobs")  # fmt: skip
    ctx = ToolContext(engine=env.engine, project_id=pid, home=env.home, models_dir=coins["models"],
                      caller=CALLER, backends_factory=lambda: stack, on_job=job_runner.run_job)  # fmt: skip
    unlabelled = set(coins["rest"]) - {a.image_id for a in annotations.list_(env, CALLER, pid, limit=1000)}
    model = ScriptedModel(
        {"content": "", "tool_calls": [call("label_with_project_detector", threshold=0.01)]}
    )
    bot = CommandAgent.start(model, "m", ctx, command_tools(), insist=None)
    turn = bot.send("label the rest with the detector trained on this project")
    (record,) = turn.tool_calls
    assert not record.error, record.result
    assert f"with {coins['model']} (trained on this project)" in turn.text and " done: " in turn.text
    job = jobs.list_(env, CALLER, pid, kind=KIND, limit=1)[0]
    assert job.params["detector"] == coins["model"] and job.state == "done" and job.total == len(unlabelled)
    assert len(spy) == len(unlabelled) and "detector" not in vars(stack), "the COCO detector never loaded"
    found = labelled_by(env, pid, job.id)
    assert all(a.model.startswith(coins["model"]) for a in found)
    print(f"the chat's job labelled {len(unlabelled)} photos: {len(found)} proposals ({EPOCHS} epochs)")


def test_label_with_project_detector_says_what_is_wrong(coins: dict[str, Any]) -> None:
    from tools.label_trained import TOOL

    env = coins["env"]

    def ctx(pid: int) -> ToolContext:
        return ToolContext(engine=env.engine, project_id=pid, home=env.home, models_dir=coins["models"],
                           caller=CALLER)  # fmt: skip

    with pytest.raises(ToolError, match="no detector has been trained on this project yet"):
        TOOL(ctx(coins["pid"] + 1), {})
    with pytest.raises(ToolError, match=r"trained on coin only, not person"):
        TOOL(ctx(coins["pid"]), {"classes": ["person"]})


def test_the_chat_trains_a_detector_on_the_accepted_labels(coins: dict[str, Any], tmp_path: Path) -> None:
    from agent.command import CommandAgent
    from server.jobs import JobRunner
    from tests.agent.conftest import ScriptedModel, call
    from tools.catalog import command_tools
    from tools.models.trained import find
    from tools.training import KIND, TrainJob

    env, pid, models = coins["env"], coins["pid"], tmp_path / "models"  # the module's detector stays
    job_runner = JobRunner(env.engine, {KIND: TrainJob(home=env.home, models_dir=models, device="cpu")},
                           lock_dir=env.home / "jobs")  # fmt: skip
    ctx = ToolContext(engine=env.engine, project_id=pid, home=env.home, models_dir=models, caller=CALLER,
                      on_job=job_runner.run_job)  # fmt: skip
    model = ScriptedModel({"content": "", "tool_calls": [call("train", epochs=EPOCHS, imgsz=SIZE)]})
    turn = CommandAgent.start(model, "m", ctx, command_tools(), insist=None).send(
        "train a detector on our labels"
    )
    (record,) = turn.tool_calls
    assert not record.error, record.result
    trained = find(models, f"project-{pid}-yolo")
    assert turn.text.startswith(
        f"Trained {trained.model_id} in job {trained.job_id} ({EPOCHS} epochs): held-out"
    )
    assert "label_with_project_detector labels with it" in turn.text
    assert trained.classes == ["coin"] and trained.provenance["trained_by"] == CALLER.username
    assert jobs.get(env, CALLER, pid, trained.job_id).params["via"] == "agent"


def test_a_ray_worker_labels_with_the_detector_a_job_names(settings_env: dict[str, Any], ray_cluster) -> None:
    """A job queued with the project's trained detector (as the agent's tool queues it) run by
    `labelwright worker --executor ray`: the actors build that detector, not the stack's COCO one."""
    from server import cli_worker

    c = settings_env
    env, pid = c["env"], c["pid"]
    chosen = c["rest"][-2:]
    job = jobs.start_label(
        env, CALLER, pid, classes=["coin"], images=chosen, threshold=0.01, extra={"detector": c["model"]}
    )
    ran = runner.invoke(
        cli_worker.app, ["--executor", "ray", "--ray-address", "local", "--exit-when-idle", "--poll", "0.1"]
    )
    assert ran.exit_code == 0, ran.output
    done = jobs.get(env, CALLER, pid, job.id)
    assert (done.state, done.done, done.error) == ("done", len(chosen), ""), done.error
    found = labelled_by(env, pid, job.id)
    assert found and all(a.model.startswith(c["model"]) for a in found)  # the trained detector's boxes
