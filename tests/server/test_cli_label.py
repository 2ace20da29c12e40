"""`labelwright label` and `labelwright jobs` via typer's runner, with fake backends swapped in;
the real lite stack on bus.jpg and zidane.jpg is the slow test at the end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from server import cli_label
from store.db import new_session, open_engine
from store.jobs import get_job
from store.models import Annotation, JobState
from tests.tools.conftest import FakeBackends, FakeDetector, ingest_store, make_photo_dir

RUN = CliRunner()


@pytest.fixture
def project(home: Path, tmp_path: Path, photos: dict[str, Path]):
    return ingest_store(home, make_photo_dir(tmp_path / "src", photos, n_extra=4))


@pytest.fixture
def fake_stack(monkeypatch: pytest.MonkeyPatch):
    backends = FakeBackends()
    built: list[str] = []

    def factory(stack: str, models_dir: Path, detector: str | None = None):
        built.append(stack)
        return lambda: backends

    monkeypatch.setattr(cli_label, "backends_factory", factory)
    return backends, built


def label(*extra: str):
    return RUN.invoke(cli_label.app, ["label", "--project", "p", "--classes", "person,bus,tie", *extra])


def test_label_runs_job_and_prints_summary(project, fake_stack) -> None:
    result = label("--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["state"], data["done"], data["total"]) == ("done", 6, 6)
    assert data["annotations"]["bus"] >= 1 and data["annotations"]["person"] >= 2
    assert data["params"] == {
        "classes": ["person", "bus", "tie"],
        "threshold": 0.3,
        "stack": "lite",
        "requested_by": "local",  # the CLI acts as the machine's local user
        "via": "cli",
    }
    assert fake_stack[1] == ["lite"]
    again = label("--json")  # same command again: the finished job is reported, not redone
    assert json.loads(again.stdout)["job_id"] == data["job_id"]
    assert json.loads(again.stdout)["annotations"] == data["annotations"]


def test_batch_labels_the_same_with_the_stages_overlapped(home, tmp_path, photos, fake_stack) -> None:
    """--batch N runs the models N images at a time, ahead of the writes (tools.overlapped_label)."""
    source = make_photo_dir(tmp_path / "src", photos, n_extra=4)
    ingest_store(home, source, project="p")
    ingest_store(home, source, project="q")
    plain = label("--json")
    batched = RUN.invoke(
        cli_label.app, ["label", "--project", "q", "--classes", "person,bus,tie", "--batch", "3", "--json"]
    )
    assert plain.exit_code == 0 and batched.exit_code == 0, batched.output
    one, three = json.loads(plain.stdout), json.loads(batched.stdout)
    assert (three["state"], three["done"]) == ("done", 6)
    assert three["annotations"] == one["annotations"] and sum(one["annotations"].values()) > 0
    bad = RUN.invoke(cli_label.app, ["label", "--project", "q", "--classes", "person", "--batch", "0"])
    assert bad.exit_code == 2 and "--batch" in bad.output


@pytest.mark.parametrize("batch", [[], ["--batch", "2"]], ids=["plain", "overlapped"])
def test_ctrl_c_cancels_and_rerun_resumes(project, fake_stack, batch) -> None:
    class Interrupted(FakeDetector):
        def detect(self, image, prompts, threshold):
            if self.calls == 3 and not getattr(self, "fired", False):  # label check + 2 images done
                self.fired = True
                raise KeyboardInterrupt
            return super().detect(image, prompts, threshold)

    fake_stack[0].detector = Interrupted()
    first = label("--images", "bus.jpg,zidane.jpg,coffee.png,chelsea.png,rocket.jpg", *batch)
    assert first.exit_code == 130
    engine = open_engine(project.home / "labelwright.db")
    with new_session(engine) as session:
        job = get_job(session, job_id=1)
    # Image by image the interrupt comes on the third image: two are written. In batches of two
    # it may come in the batch of the second and third, so both are dropped with it.
    cursors = (2,) if not batch else (1, 2)
    assert job.state == JobState.cancelled and job.cursor in cursors
    assert f"after {job.cursor} images; rerun the same command to resume" in first.output
    second = label("--images", "bus.jpg,zidane.jpg,coffee.png,chelsea.png,rocket.jpg", "--json", *batch)
    assert second.exit_code == 0, second.output
    assert f"resuming job 1 at image {job.cursor + 1} of 5" in second.output
    assert (json.loads(second.stdout)["job_id"], json.loads(second.stdout)["done"]) == (1, 5)
    # the label check, then each image once (and, in batches, the one dropped with the interrupt)
    assert fake_stack[0].detector.calls == 1 + 5 + (2 - job.cursor)
    with new_session(engine) as session:
        written = [(a.image_id, a.category_id, tuple(a.bbox)) for a in session.exec(select(Annotation))]
    assert written and len(set(written)) == len(written)  # nothing written twice


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--project", "nope", "--classes", "person"], "no project named 'nope'"),
        (["--project", "p", "--classes", "unicorn"], "cannot detect 'unicorn'"),
        (["--project", "p", "--classes", "person", "--images", "bus.jgp"], "did you mean: bus.jpg"),
        (["--project", "p", "--classes", "person", "--stack", "huge"], "--stack must be lite or full"),
    ],
)
def test_label_errors(project, fake_stack, args, message) -> None:
    result = RUN.invoke(cli_label.app, ["label", *args])
    assert result.exit_code == 1 and message in result.output


def test_jobs_list_cancel_resume(project, fake_stack) -> None:
    from server.jobs import JobRunner
    from tools.auto_label import KIND, LabelJob

    engine = open_engine(project.home / "labelwright.db")
    runner = JobRunner(
        engine,
        {KIND: LabelJob(home=project.home, backends_factory=FakeBackends)},
        lock_dir=project.home / "jobs",
    )
    params = {
        "classes": ["tie"],
        "image_ids": [project.images["zidane.jpg"]],
        "threshold": 0.3,
        "stack": "lite",
    }
    job_id = runner.enqueue(project.project_id, KIND, params)
    listed = RUN.invoke(cli_label.app, ["jobs", "list", "--json"])
    assert [(j["id"], j["state"], j["done"], j["total"]) for j in json.loads(listed.stdout)] == [
        (job_id, "queued", 0, 1)
    ]
    cancelled = RUN.invoke(cli_label.app, ["jobs", "cancel", str(job_id)])
    assert cancelled.exit_code == 0 and f"job {job_id}: cancelled" in cancelled.output
    again = RUN.invoke(cli_label.app, ["jobs", "cancel", str(job_id)])
    assert again.exit_code == 1 and "only queued or running jobs cancel" in again.output
    resumed = RUN.invoke(cli_label.app, ["jobs", "resume", str(job_id), "--json"])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["annotations"] == {"tie": 1}
    table = RUN.invoke(cli_label.app, ["jobs", "list", "--project", "p", "--state", "done"])
    assert table.exit_code == 0 and "auto_label" in table.output and "1/1" in table.output
    assert RUN.invoke(cli_label.app, ["jobs", "resume", "77"]).exit_code == 1


# Hand-drawn boxes (x1, y1, x2, y2), read off the photos on a 10-50 px grid; people include what
# is visible of them (Zidane's arm reaches to x=1150; the man at bus.jpg's left edge is partial).
HAND = {
    "bus.jpg": {
        "bus": [(18, 230, 805, 720)],
        "person": [(50, 398, 245, 905), (222, 405, 345, 860), (668, 395, 810, 878), (0, 550, 78, 875)],
    },
    "zidane.jpg": {
        "person": [(120, 200, 1150, 720), (750, 40, 1140, 720)],
        "tie": [(440, 430, 500, 720), (992, 310, 1038, 415)],  # Zidane's; Ancelotti's above the hand
    },
}
# At the CLI's default threshold 0.3 the lite stack (NanoDet) finds 8 of these 9: Zidane's tie,
# dark on a dark suit, scores 0.25. Every class must be found at least once.
MIN_RECALL, MIN_PRECISION, IOU = 0.85, 0.8, 0.5


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.slow
def test_real_lite_stack_finds_people_bus_and_tie(
    home: Path, tmp_path: Path, photos: dict[str, Path]
) -> None:
    from sqlmodel import select

    from store.masks import mask_from_rle
    from store.models import Annotation, Category, Image

    store = ingest_store(home, make_photo_dir(tmp_path / "src", photos, n_extra=0))
    result = RUN.invoke(cli_label.app, ["label", "--project", "p", "--classes", "person,bus,tie", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["state"] == "done"
    with new_session(store.engine) as session:
        rows = session.exec(
            select(Image.file_name, Category.name, Annotation)
            .join(Image, Image.id == Annotation.image_id)
            .join(Category, Category.id == Annotation.category_id)
        ).all()
    predicted = [
        (f, c, (a.bbox[0], a.bbox[1], a.bbox[0] + a.bbox[2], a.bbox[1] + a.bbox[3]), a) for f, c, a in rows
    ]
    matched_gt, true_pos, report, found = 0, 0, [], set()
    for name, classes in HAND.items():
        for cls, boxes in classes.items():
            free = [p for p in predicted if p[0] == name and p[1] == cls]
            for gt in boxes:
                best = max(free, key=lambda p: iou(p[2], gt), default=None)
                if best is not None and iou(best[2], gt) >= IOU:
                    matched_gt += 1
                    found.add(cls)
                    free.remove(best)
                report.append((name, cls, gt, None if best is None else round(iou(best[2], gt), 2)))
    n_gt = sum(len(b) for c in HAND.values() for b in c.values())
    for name, cls, box, ann in predicted:
        true_pos += any(iou(box, gt) >= IOU for gt in HAND.get(name, {}).get(cls, []))
        mask = mask_from_rle(ann.mask)
        fill = mask.sum() / (ann.bbox[2] * ann.bbox[3])
        assert 0.2 <= fill <= 0.97, f"{name} {cls} {box}: mask fills {fill:.2f} of its box"  # not a rectangle
        assert (ann.tool, ann.prompt, ann.status, ann.threshold) == ("auto_label", cls, "proposed", 0.3)
        assert ann.model.startswith("lite-") and ann.job_id == 1 and 0 < ann.score <= 1
    recall, precision = matched_gt / n_gt, true_pos / max(len(predicted), 1)
    print(
        f"recall {recall:.2f} ({matched_gt}/{n_gt}), precision {precision:.2f} ({true_pos}/{len(predicted)})"
    )
    for row in report:
        print("  hand box", *row[:3], "best IoU", row[3])
    for name, cls, box, ann in predicted:
        print("  predicted", name, cls, [round(v) for v in box], ann.score)
    assert found == {"person", "bus", "tie"}, report
    assert recall >= MIN_RECALL and precision >= MIN_PRECISION, (recall, precision, report, predicted)
