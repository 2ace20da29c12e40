"""The job runner: a worker thread, progress events, cancel/resume, leases, and crash recovery
tested with a real ``kill -9`` of a worker process (fake backends with a delay keep it fast), on
SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import select

from server.jobs import JobRunner, ProgressEvent, worker_name
from store.db import new_session, open_engine
from store.jobs import claim_job, get_job
from store.models import Annotation, Category, Image, JobState, ProjectEvent
from tests.conftest import REPO, fresh_database
from tests.tools.conftest import FakeBackends, FakeDetector, ingest_store, make_photo_dir
from tools.auto_label import KIND, LabelJob

CLASSES = ["person", "bus", "tie"]


@pytest.fixture
def store(tmp_path: Path, photos: dict[str, Path], engine_url):
    return ingest_store(tmp_path / "home", make_photo_dir(tmp_path / "src", photos), database=engine_url)


def runner_for(store, backends=None, delay_s: float = 0.0, **options) -> JobRunner:
    backends = backends or FakeBackends(detector=FakeDetector(delay_s))
    handler = LabelJob(home=store.home, backends_factory=lambda: backends)
    return JobRunner(store.engine, {KIND: handler}, poll_s=0.05, **options)


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


def test_an_item_the_database_aborted_is_redone_not_failed(store) -> None:
    from sqlalchemy.exc import OperationalError

    class Deadlocked(FakeDetector):
        def detect(self, image, prompts, threshold):
            if self.calls == 2 and not getattr(self, "aborted", False):
                self.aborted = True
                raise OperationalError("UPDATE job ...", {}, Exception("deadlock detected"))
            return super().detect(image, prompts, threshold)

    runner = runner_for(store, backends=FakeBackends(detector=Deadlocked()))
    job = runner.run_job(enqueue(store, runner))
    assert (job.state, job.cursor, job.error) == (JobState.done, 6, "")
    assert per_image(annotation_keys(store.engine)) == {
        k: v for k, v in expected_per_image(store).items() if v
    }
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


def test_requeue_only_jobs_whose_worker_is_gone(store) -> None:
    runner = runner_for(store)
    live, dead, expired = (enqueue(store, runner) for _ in range(3))
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_worker = f"{worker_name().split(':')[0]}:{gone.stdout.strip()}:0"  # a pid that has exited
    with new_session(store.engine) as session:
        assert claim_job(session, job_id=live, worker=worker_name())  # another runner in this process
        assert claim_job(session, job_id=dead, worker=dead_worker)
        assert claim_job(session, job_id=expired, worker="elsewhere:1:x", lease=timedelta(seconds=-1))
    # SQLite (one host) sees the dead process at once; PostgreSQL (many hosts) waits for its lease
    requeued = [expired, dead] if store.engine.dialect.name == "sqlite" else [expired]
    assert runner.requeue_stale() == sorted(requeued)
    with pytest.raises(ValueError, match=f"job {live} is being run by another process"):
        runner.run_job(live)
    with new_session(store.engine) as session:
        assert get_job(session, job_id=live).state == JobState.running


def test_each_item_commits_with_its_job_event(store) -> None:
    runner = runner_for(store)
    job_id = enqueue(store, runner)
    with new_session(store.engine) as session:
        job = get_job(session, job_id=job_id)
        job.params = {**job.params, "requested_by": "alice"}
        session.add(job)
        session.commit()
    assert runner.run_job(job_id).state == JobState.done
    events = job_events(store.engine, job_id)
    assert [(e.action, e.data["done"]) for e in events] == [
        ("running", 0),
        *(("running", n) for n in range(1, 7)),
        ("done", 6),
    ]
    assert {(e.actor, e.via, e.project_id, tuple(e.ids)) for e in events} == {
        ("alice", "job", store.project_id, (job_id,))
    }
    assert events[-1].data["total"] == 6 and events[-1].data["rate"] > 0


def job_events(engine, job_id: int) -> list[ProjectEvent]:
    with new_session(engine) as session:
        rows = session.exec(select(ProjectEvent).where(ProjectEvent.kind == "job").order_by(ProjectEvent.id))
        return [e for e in rows if e.ids == [job_id]]


def test_a_worker_whose_lease_was_taken_commits_nothing_more(store) -> None:
    slow = runner_for(store, delay_s=0.3, lease_s=0.6)
    job_id = enqueue(store, slow)
    with new_session(store.engine) as session:
        assert claim_job(session, job_id=job_id, worker=slow.worker, lease=slow.lease)
        # another worker takes the job over as if our lease had run out
        job = get_job(session, job_id=job_id)
        job.worker = "thief:1:x"
        session.add(job)
        session.commit()
    ended = slow._execute(job_id, threading.Event())
    assert ended.worker == "thief:1:x" and ended.cursor == 0  # the item in flight was rolled back
    assert annotation_keys(store.engine) == Counter()


def _spawn_worker(database, home: Path, delay_s: float, lease_s: float = 30.0) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.server.test_jobs",
            str(database),
            str(home),
            str(delay_s),
            str(lease_s),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _reference(tmp_path: Path, photos, request) -> Counter:
    database = fresh_database(request, tmp_path / "ref")
    reference = ingest_store(tmp_path / "ref", make_photo_dir(tmp_path / "src2", photos), database=database)
    ref_runner = runner_for(reference)
    assert ref_runner.run_job(enqueue(reference, ref_runner)).state == JobState.done
    expected = annotation_keys(reference.engine)
    reference.engine.dispose()
    return expected


def _wait_cursor(store, job_id: int, at_least: int, workers: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + 60
    while True:
        with new_session(store.engine) as session:
            if get_job(session, job_id=job_id).cursor >= at_least:
                return
        for w in workers:
            assert time.monotonic() < deadline and w.poll() is None, w.stdout.read().decode()
        time.sleep(0.02)


def test_kill_9_mid_job_then_resume_loses_and_duplicates_nothing(store, tmp_path, photos, request) -> None:
    expected = _reference(tmp_path, photos, request)
    assert sum(expected.values()) == sum(expected_per_image(store).values()) > 0

    job_id = enqueue(store, runner_for(store))
    database = store.engine.url.render_as_string(hide_password=False)
    worker = _spawn_worker(database, store.home, delay_s=0.5, lease_s=1.5)
    _wait_cursor(store, job_id, 2, [worker])
    time.sleep(0.25)  # kill it once two images are committed and a third is in flight
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

    restarted = _spawn_worker(database, store.home, delay_s=0.0)  # takes the dead worker's job over
    out, _ = restarted.communicate(timeout=120)
    assert restarted.returncode == 0, out.decode()
    with new_session(store.engine) as session:
        job = get_job(session, job_id=job_id)
    assert (job.state, job.cursor) == (JobState.done, 6)
    assert annotation_keys(store.engine) == expected


def test_two_workers_one_killed_the_other_finishes_the_job(store, tmp_path, photos, request) -> None:
    """Two worker processes on one queue; the one running the job dies by SIGKILL mid-job: the
    other resumes it from the cursor once the lease runs out. Every image is labeled once."""
    expected = _reference(tmp_path, photos, request)
    database = store.engine.url.render_as_string(hide_password=False)
    job_id = enqueue(store, runner_for(store))
    workers = [_spawn_worker(database, store.home, delay_s=0.4, lease_s=1.5) for _ in range(2)]
    try:
        _wait_cursor(store, job_id, 2, workers)
        with new_session(store.engine) as session:
            holder = get_job(session, job_id=job_id).worker
        pid = int(holder.split(":")[1])
        victim = next(w for w in workers if w.pid == pid)
        survivor = next(w for w in workers if w.pid != pid)
        time.sleep(0.2)  # an image in flight
        os.kill(victim.pid, signal.SIGKILL)
        assert victim.wait(10) == -signal.SIGKILL
        out, _ = survivor.communicate(timeout=120)
        assert survivor.returncode == 0, out.decode()
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
    with new_session(store.engine) as session:
        job = get_job(session, job_id=job_id)
    assert (job.state, job.cursor, job.worker) == (JobState.done, 6, "")
    assert annotation_keys(store.engine) == expected  # every image once, nothing duplicated
    progress = [e.data["done"] for e in job_events(store.engine, job_id) if e.action == "running"]
    # in commit order: the victim's start and steps, the survivor's start where it took over, its steps
    starts = [k for k in range(2, 6) if progress == [0, *range(1, k + 1), k, *range(k + 1, 7)]]
    assert len(starts) == 1, progress  # one committed step per image, no rolled-back one


def _worker_main(database: str, home: str, delay_s: str, lease_s: str) -> None:
    """Subprocess entry: a worker on the shared queue with fake backends, until no job is left."""
    engine = open_engine(database)
    backends = FakeBackends(detector=FakeDetector(float(delay_s)))
    handler = LabelJob(home=Path(home), backends_factory=lambda: backends)
    runner = JobRunner(engine, {KIND: handler}, poll_s=0.05, lease_s=float(lease_s))
    runner.requeue_stale()
    runner.run_worker(threading.Event(), exit_when_idle=True)
    engine.dispose()


if __name__ == "__main__":
    _worker_main(*sys.argv[1:5])
