"""The job runner: a worker thread, progress events, cancel/resume, and crash recovery tested
with a real ``kill -9`` of a worker process (fake backends with a delay keep it fast)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import select

from server.jobs import JobRunner, ProgressEvent, _JobLock
from store.db import new_session, open_engine
from store.jobs import get_job
from store.models import Annotation, Category, Image, JobState
from tests.conftest import REPO
from tests.tools.conftest import FakeBackends, FakeDetector, ingest_store, make_photo_dir
from tools.auto_label import KIND, LabelJob

CLASSES = ["person", "bus", "tie"]


@pytest.fixture
def store(tmp_path: Path, photos: dict[str, Path]):
    return ingest_store(tmp_path / "home", make_photo_dir(tmp_path / "src", photos))


def runner_for(store, backends=None, delay_s: float = 0.0) -> JobRunner:
    backends = backends or FakeBackends(detector=FakeDetector(delay_s))
    handler = LabelJob(home=store.home, backends_factory=lambda: backends)
    return JobRunner(store.engine, {KIND: handler}, lock_dir=store.home / "jobs", poll_s=0.05)


def enqueue(store, runner: JobRunner) -> int:
    ids = sorted(store.images.values())
    return runner.enqueue(store.project_id, KIND, {"classes": CLASSES, "image_ids": ids, "threshold": 0.3})


def wait_state(store, job_id: int, states: set[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with new_session(store.engine) as session:
            if get_job(session, job_id=job_id).state.value in states:
                return
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {states}")


def annotation_keys(engine) -> Counter:
    """(image, class, rounded bbox) of every annotation, counted: duplicates show up as 2."""
    with new_session(engine) as session:
        rows = session.exec(
            select(Image.file_name, Category.name, Annotation.bbox, Annotation.job_id)
            .join(Image, Image.id == Annotation.image_id)
            .join(Category, Category.id == Annotation.category_id)
        ).all()
    return Counter((f, c, tuple(round(v) for v in b)) for f, c, b, _ in rows)


def expected_per_image(store) -> dict[str, int]:
    """How many boxes the fake detector yields on each photo (its boxes are clipped to the size)."""
    with new_session(store.engine) as session:
        sizes = {i.file_name: (i.height, i.width) for i in session.exec(select(Image)).all()}
    return {
        name: len(FakeDetector().detect(np.zeros((*hw, 3), np.uint8), CLASSES, 0.3))
        for name, hw in sizes.items()
    }


def per_image(keys: Counter) -> dict[str, int]:
    out: Counter = Counter()
    for (file_name, _, _), n in keys.items():
        out[file_name] += n
    return dict(out)


def test_worker_runs_job_and_reports_progress(store) -> None:
    runner = runner_for(store)
    events: list[ProgressEvent] = []
    runner.subscribe(events.append)
    runner.start()
    try:
        job_id = enqueue(store, runner)
        wait_state(store, job_id, {"done"})
    finally:
        runner.stop()
    assert [e.done for e in events] == [0, 1, 2, 3, 4, 5, 6, 6]
    assert events[-1].state == "done" and events[-1].total == 6 and events[-1].rate > 0
    with new_session(store.engine) as session:
        anns = session.exec(select(Annotation)).all()
    assert len(anns) == sum(expected_per_image(store).values()) and {a.job_id for a in anns} == {job_id}


def test_cancel_running_job_then_resume_from_cursor(store) -> None:
    runner = runner_for(store, delay_s=0.15)
    runner.start()
    try:
        job_id = enqueue(store, runner)
        wait_state(store, job_id, {"running"})
        time.sleep(0.2)
        runner.cancel(job_id)
        wait_state(store, job_id, {"cancelled"})
        with new_session(store.engine) as session:
            stopped = get_job(session, job_id=job_id)
        assert 0 < stopped.cursor < 6
        done_images = {
            n for n, i in store.images.items() if i in sorted(store.images.values())[: stopped.cursor]
        }
        assert set(per_image(annotation_keys(store.engine))) <= done_images  # committed items only
        runner.resume(job_id)
        wait_state(store, job_id, {"done"})
    finally:
        runner.stop()
    keys = annotation_keys(store.engine)
    assert set(keys.values()) == {1}
    assert per_image(keys) == {k: v for k, v in expected_per_image(store).items() if v}


def test_cancel_queued_and_finished_jobs(store) -> None:
    runner = runner_for(store)
    job_id = enqueue(store, runner)
    assert runner.cancel(job_id).state == JobState.cancelled
    with pytest.raises(ValueError, match="only queued or running jobs cancel"):
        runner.cancel(job_id)
    with pytest.raises(ValueError, match="no job with id 999"):
        runner.cancel(999)
    with pytest.raises(ValueError, match="no handler for job kind 'nope'"):
        runner.enqueue(store.project_id, "nope", {})


def test_failing_item_fails_job_resumable(store) -> None:
    class Flaky(FakeDetector):
        def detect(self, image, prompts, threshold):
            if self.calls == 2 and not getattr(self, "failed", False):
                self.failed = True
                raise RuntimeError("model fell over")
            return super().detect(image, prompts, threshold)

    runner = runner_for(store, backends=FakeBackends(detector=Flaky()))
    job_id = enqueue(store, runner)
    job = runner.run_job(job_id)
    assert (job.state, job.cursor, job.error) == (JobState.failed, 2, "RuntimeError: model fell over")
    runner.resume(job_id)
    assert runner.run_job(job_id).state == JobState.done
    assert set(annotation_keys(store.engine).values()) == {1}


def test_stop_mid_job_leaves_it_queued_for_next_start(store) -> None:
    runner = runner_for(store, delay_s=0.2)
    runner.start()
    job_id = enqueue(store, runner)
    wait_state(store, job_id, {"running"})
    runner.stop()
    with new_session(store.engine) as session:
        job = get_job(session, job_id=job_id)
    assert job.state == JobState.queued and job.cursor < 6
    assert runner_for(store).run_job(job_id).state == JobState.done


def test_requeue_only_jobs_whose_process_is_gone(store) -> None:
    runner = runner_for(store)
    live, dead = enqueue(store, runner), enqueue(store, runner)
    with new_session(store.engine) as session:
        for job_id in (live, dead):
            job = get_job(session, job_id=job_id)
            job.state = JobState.running
            session.add(job)
        session.commit()
    held = _JobLock(store.home / "jobs", live)  # another runner's lock (flock is per open file)
    assert held.acquire()
    try:
        assert runner.requeue_stale() == [dead]
        with pytest.raises(ValueError, match=f"job {live} is being run by another process"):
            runner.run_job(live)
    finally:
        held.release()
    assert runner.requeue_stale() == [live]


def _spawn_worker(home: Path, delay_s: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.server.test_jobs", str(home), str(delay_s)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_kill_9_mid_job_then_resume_loses_and_duplicates_nothing(store, tmp_path, photos) -> None:
    reference = ingest_store(tmp_path / "ref", make_photo_dir(tmp_path / "src2", photos))
    ref_runner = runner_for(reference)
    assert ref_runner.run_job(enqueue(reference, ref_runner)).state == JobState.done
    expected = annotation_keys(reference.engine)
    assert sum(expected.values()) == sum(expected_per_image(store).values()) > 0

    job_id = enqueue(store, runner_for(store))
    worker = _spawn_worker(store.home, delay_s=0.5)
    deadline = time.monotonic() + 60
    while True:  # kill it once two images are committed and a third is in flight
        with new_session(store.engine) as session:
            cursor = get_job(session, job_id=job_id).cursor
        if cursor >= 2:
            time.sleep(0.25)
            break
        assert time.monotonic() < deadline and worker.poll() is None, worker.stdout.read().decode()
        time.sleep(0.02)
    os.kill(worker.pid, signal.SIGKILL)
    assert worker.wait(10) == -signal.SIGKILL
    with new_session(store.engine) as session:
        killed = get_job(session, job_id=job_id)
    assert killed.state == JobState.running and 2 <= killed.cursor < 6
    first = sorted(store.images.values())[: killed.cursor]
    by_id = {i: n for n, i in store.images.items()}
    written = per_image(annotation_keys(store.engine))
    assert written == {
        by_id[i]: expected_per_image(store)[by_id[i]] for i in first if expected_per_image(store)[by_id[i]]
    }

    restarted = _spawn_worker(store.home, delay_s=0.0)  # requeues the dead worker's job, finishes it
    out, _ = restarted.communicate(timeout=120)
    assert restarted.returncode == 0, out.decode()
    with new_session(store.engine) as session:
        job = get_job(session, job_id=job_id)
    assert (job.state, job.cursor) == (JobState.done, 6)
    assert annotation_keys(store.engine) == expected


def _worker_main(home: str, delay_s: str) -> None:
    """Subprocess entry: run the home's jobs with a thread worker until none is left."""
    engine = open_engine(Path(home) / "labelwright.db")
    backends = FakeBackends(detector=FakeDetector(float(delay_s)))
    handler = LabelJob(home=Path(home), backends_factory=lambda: backends)
    runner = JobRunner(engine, {KIND: handler}, lock_dir=Path(home) / "jobs", poll_s=0.05)
    idle = threading.Event()
    runner.subscribe(lambda e: idle.set() if e.state in ("done", "failed", "cancelled") else None)
    runner.start()
    idle.wait(120)
    runner.stop()


if __name__ == "__main__":
    _worker_main(*sys.argv[1:3])
