"""What the label-handler tests share: one way to queue the job, one way to read its output."""

from __future__ import annotations

from collections import Counter

from sqlmodel import select

from server.jobs import JobRunner
from store.db import new_session
from store.models import Annotation, Category, Image
from tests.server.test_jobs import CLASSES
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
