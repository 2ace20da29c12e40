"""What the label-handler tests share: one way to queue the job, one way to read its output."""

from __future__ import annotations

from collections import Counter

from sqlmodel import select

from server.jobs import JobRunner, ProgressEvent
from store.db import new_session
from store.models import Annotation, Category, Image, Job, JobState
from tests.server.test_jobs import CLASSES, expected_per_image
from tests.tools.conftest import FakeDetector
from tools.auto_label import KIND


class FailsOnce(FakeDetector):
    """Falls over on its third image, once (its state lives in the actor)."""

    def detect(self, image, prompts, threshold):
        if self.calls == 2 and not getattr(self, "failed", False):
            self.failed = True
            raise RuntimeError("model fell over")
        return super().detect(image, prompts, threshold)


def rows(engine) -> Counter:
    """Every annotation as (image, class, bbox, RLE, score, model, tool), counted."""
    with new_session(engine) as session:
        found = session.exec(
            select(Image.file_name, Category.name, Annotation)
            .join(Image, Image.id == Annotation.image_id)
            .join(Category, Category.id == Annotation.category_id)
        ).all()
    return Counter(
        (f, c, tuple(round(v, 3) for v in a.bbox), str(a.mask["counts"]), a.score, a.model, a.tool)
        for f, c, a in found
    )


def run(store, handler) -> tuple[JobRunner, int]:
    runner = JobRunner(store.engine, {KIND: handler}, poll_s=0.05)
    ids = sorted(store.images.values())
    job_id = runner.enqueue(store.project_id, KIND, {"classes": CLASSES, "image_ids": ids, "threshold": 0.3})
    return runner, job_id


def cancel_at_three_then_resume(store, handler) -> None:  # type: ignore[no-untyped-def]
    """Cancel the job when its third image is written: it stops there, nothing computed ahead is
    written, and a resume finishes it with every annotation written once."""
    runner, job_id = run(store, handler)
    cancelled: list[int] = []

    def cancel_once(event: ProgressEvent) -> None:
        if event.done == 3 and not cancelled:
            cancelled.append(runner.cancel(job_id).id or 0)

    runner.subscribe(cancel_once)
    try:
        stopped = runner.run_job(job_id)
        assert (stopped.state, stopped.cursor) == (JobState.cancelled, 3)
        first = sorted(store.images.values())[:3]
        with new_session(store.engine) as session:
            labeled = set(session.exec(select(Annotation.image_id)).all())
        assert labeled <= set(first)  # what was computed ahead wrote nothing
        runner.resume(job_id)
        assert runner.run_job(job_id).state == JobState.done
    finally:
        handler.close()
    keys = rows(store.engine)
    assert set(keys.values()) == {1}  # nothing written twice
    assert sum(keys.values()) == sum(expected_per_image(store).values())


def run_to_the_end(store, handler) -> Job:  # type: ignore[no-untyped-def]
    """Run the job over every image of ``store``; its progress must move one image at a time."""
    events: list[ProgressEvent] = []
    runner, job_id = run(store, handler)
    runner.subscribe(events.append)
    try:
        job = runner.run_job(job_id)
    finally:
        handler.close()
    total = len(store.images)
    assert (job.state, job.cursor) == (JobState.done, total)
    assert [e.done for e in events] == [*range(total + 1), total]  # progress in order, item by item
    return job
