"""auto_label: checks labels with the detector, resolves images, enqueues one job; LabelJob runs it."""

from __future__ import annotations

import pytest
from sqlmodel import select

from store.db import new_session
from store.models import Annotation, Job
from tools.auto_label import KIND, LabelJob
from tools.catalog import vision_tools
from tools.registry import ToolError

AUTO_LABEL = vision_tools().get("auto_label")


class Queue:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def __call__(self, kind: str, params: dict) -> int:
        self.calls.append((kind, params))
        return 41 + len(self.calls)


def test_enqueues_all_images_by_default(store, fakes) -> None:
    queue = Queue()
    result = AUTO_LABEL(store.ctx(fakes, enqueue=queue), {"classes": ["person", " bus ", "person"]})
    assert queue.calls == [
        (KIND, {"classes": ["person", "bus"], "image_ids": sorted(store.images.values()), "threshold": 0.3})
    ]
    assert (result.job_id, result.images) == (42, 6)
    assert result.text() == "started job 42: labeling person, bus on 6 images"


def test_named_images_and_threshold(store, fakes) -> None:
    queue = Queue()
    args = {
        "classes": ["tie"],
        "images": ["zidane.jpg", store.images["bus.jpg"], "zidane.jpg"],
        "threshold": 0.5,
    }
    AUTO_LABEL(store.ctx(fakes, enqueue=queue), args)
    assert queue.calls[0][1]["image_ids"] == [store.images["zidane.jpg"], store.images["bus.jpg"]]
    assert queue.calls[0][1]["threshold"] == 0.5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"classes": ["unicorn"]}, "cannot detect 'unicorn'"),
        ({"classes": ["person"], "images": ["zidanne.jpg"]}, "did you mean: zidane.jpg"),
        ({"classes": []}, "classes"),
    ],
)
def test_mistakes_enqueue_nothing(store, fakes, args, message) -> None:
    queue = Queue()
    with pytest.raises(ToolError, match=message):
        AUTO_LABEL(store.ctx(fakes, enqueue=queue), args)
    assert queue.calls == []


def test_without_a_runner(store, fakes) -> None:
    with pytest.raises(ToolError, match="background jobs are not available"):
        AUTO_LABEL(store.ctx(fakes), {"classes": ["person"]})


def test_label_job_skips_an_image_it_already_did(store, fakes) -> None:
    handler = LabelJob(home=store.home, backends_factory=lambda: fakes)
    with new_session(store.engine) as session:
        job = Job(
            project_id=store.project_id,
            kind=KIND,
            params={"classes": ["bus"], "image_ids": [store.images["bus.jpg"]], "threshold": 0.3},
            total=1,
        )
        session.add(job)
        session.commit()
        handler.process(session, job, 0)
        session.commit()
        handler.process(session, job, 0)  # delivered twice: no second copy
        session.commit()
        anns = session.exec(select(Annotation)).all()
    assert len(anns) == 1 and anns[0].job_id == job.id and anns[0].tool == KIND
    assert fakes.detector.calls == 1
    assert handler.total(job.params) == 1
