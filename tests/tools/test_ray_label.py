"""The Ray executor on a real local Ray cluster (2 CPUs, 127.0.0.1, no dashboard), with the fake
backends inside real actor processes: the same annotations as the in-process handler, an actor
killed with SIGKILL mid-job, cancel and resume, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

import pytest

from server.jobs import JobRunner, ProgressEvent
from store.models import JobState
from tests.server.test_jobs import CLASSES, expected_per_image, per_image
from tests.tools.conftest import FakeBackends, FakeDetector, ingest_store, make_photo_dir
from tests.tools.label_jobs import FailsOnce, cancel_at_three_then_resume, rows, run, run_to_the_end
from tools.auto_label import KIND, LabelJob
from tools.ray_label import RayLabelJob, RayOptions

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def store(tmp_path: Path, photos: dict[str, Path], engine_url):
    return ingest_store(tmp_path / "home", make_photo_dir(tmp_path / "src", photos), database=engine_url)


def slow_fakes() -> FakeBackends:
    return FakeBackends(detector=FakeDetector(delay_s=0.25))


def slower_fakes() -> FakeBackends:
    return FakeBackends(detector=FakeDetector(delay_s=1.0))


def failing_fakes() -> FakeBackends:
    return FakeBackends(detector=FailsOnce())


def test_ray_writes_the_same_annotations_as_the_in_process_run(
    ray_cluster, tmp_path: Path, photos, engine_url
) -> None:
    source = make_photo_dir(tmp_path / "src", photos)
    local = ingest_store(tmp_path / "a", source, database=tmp_path / "a.db")
    remote = ingest_store(tmp_path / "b", source, database=engine_url)
    runner, job_id = run(local, LabelJob(home=local.home, backends_factory=FakeBackends))
    assert runner.run_job(job_id).state == JobState.done
    handler = RayLabelJob(
        home=remote.home, backends_factory=FakeBackends, options=RayOptions(replicas=2, batch=2)
    )
    run_to_the_end(remote, handler)
    expected = rows(local.engine)
    assert sum(expected.values()) == sum(expected_per_image(local).values()) > 0
    assert rows(remote.engine) == expected  # same boxes, masks, scores and provenance


def test_an_actor_killed_mid_job_is_replaced_and_nothing_is_lost_or_doubled(ray_cluster, store) -> None:
    handler = RayLabelJob(
        home=store.home, backends_factory=slower_fakes, options=RayOptions(replicas=2, batch=1, window=1)
    )
    runner, job_id = run(store, handler)
    killed: list[int] = []

    def kill_one(event: ProgressEvent) -> None:
        if event.done == 2 and not killed:  # item 2 is being computed on actor 0 now
            pid = handler.pool.pids[0]
            os.kill(pid, signal.SIGKILL)  # the actor process, as the OOM killer or a lost node would
            killed.append(pid)

    runner.subscribe(kill_one)
    try:
        job = runner.run_job(job_id)
        replaced, pids = handler.pool.replaced, list(handler.pool.pids)
    finally:
        handler.close()
    assert killed and (job.state, job.cursor, job.error) == (JobState.done, 6, "")
    assert replaced == 1 and killed[0] not in pids
    keys = rows(store.engine)
    assert set(keys.values()) == {1}  # no annotation written twice
    assert per_image(Counter({k[:3]: n for k, n in keys.items()})) == {
        k: v for k, v in expected_per_image(store).items() if v
    }  # every image labeled


def test_cancel_stops_at_the_cursor_and_resume_finishes_on_ray(ray_cluster, store) -> None:
    handler = RayLabelJob(home=store.home, backends_factory=slow_fakes, options=RayOptions(replicas=2))
    cancel_at_three_then_resume(store, handler)


def test_a_model_error_fails_the_job_at_its_cursor_and_a_resume_finishes(ray_cluster, store) -> None:
    handler = RayLabelJob(
        home=store.home, backends_factory=failing_fakes, options=RayOptions(replicas=1, batch=1)
    )
    runner, job_id = run(store, handler)
    try:
        failed = runner.run_job(job_id)
        assert (failed.state, failed.cursor) == (JobState.failed, 2) and "model fell over" in failed.error
        runner.resume(job_id)
        assert runner.run_job(job_id).state == JobState.done
    finally:
        handler.close()
    keys = rows(store.engine)
    assert set(keys.values()) == {1}
    assert sum(keys.values()) == sum(expected_per_image(store).values())


def test_the_vocabulary_check_runs_on_an_actor(ray_cluster, tmp_path: Path) -> None:
    handler = RayLabelJob(home=tmp_path, backends_factory=FakeBackends)
    try:
        handler.check_labels(["person", "bus"])
        with pytest.raises(ValueError, match="unicorn"):
            handler.check_labels(["unicorn"])
        with pytest.raises(RuntimeError, match="live on its actors"):
            handler.backends  # noqa: B018
    finally:
        handler.close()


@pytest.mark.parametrize(
    ("extra", "said"),
    [({"detector": "project-1-yolo-job3"}, "cannot build the job's detector 'project-1-yolo-job3'"),
     ({"examples": [1]}, "label-by-example jo")],
)  # fmt: skip
def test_a_job_the_actors_cannot_run_as_asked_fails_before_writing(ray_cluster, store, extra, said) -> None:
    """Examples from the store (the actors have no store), or a detector the actors' stack cannot
    build (the fakes have no models dir): the job fails with why before any image is sent,
    instead of labeling with the wrong detector."""
    handler = RayLabelJob(home=store.home, backends_factory=FakeBackends, options=RayOptions(replicas=1))
    runner = JobRunner(store.engine, {KIND: handler}, poll_s=0.05)
    ids = sorted(store.images.values())
    params = {"classes": CLASSES, "image_ids": ids, "threshold": 0.3, **extra}
    try:
        failed = runner.run_job(runner.enqueue(store.project_id, KIND, params))
    finally:
        handler.close()
    assert (failed.state, failed.cursor) == (JobState.failed, 0)
    assert said in failed.error
    assert "without --executor ray" in failed.error or "detector" in extra
    assert sum(rows(store.engine).values()) == 0


def test_bad_options_name_what_was_expected() -> None:
    with pytest.raises(ValueError, match=r"replicas >= 1.*got replicas=0, batch=0"):
        RayOptions(replicas=0, batch=0)


@pytest.mark.slow
def test_the_real_lite_stack_on_ray_writes_what_it_writes_in_process(
    ray_cluster, tmp_path: Path, photos, models_dir: Path
) -> None:
    from functools import partial

    from tools.backends.stacks import build_backends

    factory = partial(build_backends, "lite", models_dir)
    source = make_photo_dir(tmp_path / "src", photos, n_extra=0)  # bus.jpg and zidane.jpg
    local = ingest_store(tmp_path / "a", source)
    remote = ingest_store(tmp_path / "b", source)
    runner, job_id = run(local, LabelJob(home=local.home, backends_factory=factory))
    assert runner.run_job(job_id).state == JobState.done
    handler = RayLabelJob(home=remote.home, backends_factory=factory, options=RayOptions(replicas=1))
    runner, job_id = run(remote, handler)
    try:
        assert runner.run_job(job_id).state == JobState.done
    finally:
        handler.close()
    expected = rows(local.engine)
    assert sum(n for k, n in expected.items() if k[1] == "person") >= 4  # real people were found
    assert rows(remote.engine) == expected
