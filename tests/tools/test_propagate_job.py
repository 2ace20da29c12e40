"""The propagation job handler under a real ``kill -9`` of its worker process, on SQLite and
PostgreSQL: the killed run wrote nothing, the worker that takes the job over replays the frames
before the cursor and writes the whole propagation once, as one change batch.

(Queue, cancel, resume and a conflicting edit over HTTP: tests/server/test_api_videos.py.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import col, select

from ops import jobs
from ops.caller import local_caller
from ops.propagation_job import start_propagation
from ops.unit import Env
from server.jobs import JobRunner
from store.db import new_session, open_engine
from store.jobs import get_job
from store.models import Annotation, ChangeBatch, Image, JobState
from tests.conftest import REPO
from tests.ops.video_clip import Clip, add_squares, true_box
from tests.tools.conftest import FakeSegmenter
from tests.tools.test_video_label import SquareDetector
from tools.propagate_job import KIND, PropagateJob


class SlowSquares(SquareDetector):
    def __init__(self, delay_s: float) -> None:
        super().__init__()
        self.delay_s = delay_s

    def detect(self, image: np.ndarray, prompts: list[str], threshold: float):  # type: ignore[no-untyped-def]
        time.sleep(self.delay_s)
        return super().detect(image, prompts, threshold)


class Stack:
    def __init__(self, delay_s: float) -> None:
        self.detector, self.segmenter = SlowSquares(delay_s), FakeSegmenter()


@pytest.fixture
def clip(engine_url, tmp_path: Path) -> Clip:
    engine = open_engine(engine_url)
    made = add_squares(Env(engine, tmp_path / "home"), tmp_path)
    yield made
    engine.dispose()


def track_a(clip: Clip) -> list[tuple[int, int, str]]:
    """(frame index, annotation id, tool) of track A's annotations, in frame order."""
    with new_session(clip.env.engine) as s:
        rows = s.exec(
            select(Image.frame_index, Annotation.id, Annotation.tool)
            .join(Image, col(Image.id) == Annotation.image_id)
            .where(Annotation.track_id == clip.a)
            .order_by(col(Image.frame_index))
        ).all()
    return [(int(f or 0), int(i or 0), t) for f, i, t in rows]


def _spawn(clip: Clip, delay_s: float, lease_s: float) -> subprocess.Popen:
    database = clip.env.engine.url.render_as_string(hide_password=False)
    args = [database, str(clip.env.home), str(delay_s), str(lease_s)]
    return subprocess.Popen(
        [sys.executable, "-m", "tests.tools.test_propagate_job", *args],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


def test_kill_9_mid_propagation_then_takeover_writes_it_once(clip: Clip) -> None:
    before = track_a(clip)
    job = start_propagation(clip.env, local_caller("cli"), clip.project_id, clip.a, 5)
    assert job.total == 14  # frames 6-19
    worker = _spawn(clip, delay_s=0.3, lease_s=1.5)
    deadline = time.monotonic() + 90
    while True:
        with new_session(clip.env.engine) as s:
            if get_job(s, job_id=job.id).cursor >= 3:
                break
        assert time.monotonic() < deadline and worker.poll() is None, worker.stdout.read().decode()
        time.sleep(0.02)
    os.kill(worker.pid, signal.SIGKILL)
    assert worker.wait(10) == -signal.SIGKILL
    with new_session(clip.env.engine) as s:
        killed = get_job(s, job_id=job.id)
    assert killed.state == JobState.running and 3 <= killed.cursor < 14
    assert track_a(clip) == before  # nothing is written before the last frame

    taker = _spawn(clip, delay_s=0.0, lease_s=30.0)  # takes the dead worker's job over
    out, _ = taker.communicate(timeout=180)
    assert taker.returncode == 0, out.decode()
    with new_session(clip.env.engine) as s:
        done = get_job(s, job_id=job.id)
        propagating = col(ChangeBatch.description).startswith("propagate")
        batches = s.exec(select(ChangeBatch).where(propagating)).all()
    assert (done.state, done.cursor) == (JobState.done, 14), done.error
    assert (done.params["result"]["created"], done.params["result"]["deleted"]) == (14, 14)
    assert len(batches) == 1 and batches[0].id == done.params["result"]["batch_id"]
    output = jobs.output(clip.env, local_caller("cli"), clip.project_id, job.id)
    assert (output.by_class, output.tracks) == ({"person": 14}, 1)  # what `labelwright jobs` reports
    after = track_a(clip)
    assert [f for f, _, _ in after] == list(range(20))  # one annotation per frame: none twice
    assert after[:6] == before[:6] and {t for _, _, t in after[6:]} == {"propagate"}
    with new_session(clip.env.engine) as s:
        for frame_index, annotation_id, _ in after[6:]:
            x, y, w, h = s.get(Annotation, annotation_id).bbox
            tx, ty, _, _ = true_box(1, frame_index)
            assert abs(x - tx) <= 3 and abs(y - ty) <= 3 and 36 <= w <= 44, (frame_index, (x, y, w, h))


def _worker_main(database: str, home: str, delay_s: str, lease_s: str) -> None:
    """Subprocess entry: a worker with the propagation handler (slow squares), until no job is left."""
    engine = open_engine(database)
    stack = Stack(float(delay_s))
    handler = PropagateJob(home=Path(home), backends_factory=lambda: stack)
    runner = JobRunner(engine, {KIND: handler}, poll_s=0.05, lease_s=float(lease_s))
    runner.requeue_stale()
    runner.run_worker(threading.Event(), exit_when_idle=True)
    engine.dispose()


if __name__ == "__main__":
    _worker_main(*sys.argv[1:5])
