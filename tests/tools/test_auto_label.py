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
    """Stands in for a runner: records the ids of the jobs the tool queued."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, job_id: int) -> None:
        self.calls.append(job_id)


def _jobs(store) -> list[Job]:
    with new_session(store.engine) as session:
        return list(session.exec(select(Job)))


def test_queues_one_job_over_all_images_by_default(store, fakes) -> None:
    queue = Queue()
    result = AUTO_LABEL(store.ctx(fakes, on_job=queue), {"classes": ["person", " bus ", "person"]})
    (job,) = _jobs(store)
    assert queue.calls == [job.id] and job.kind == KIND
    assert job.params["classes"] == ["person", "bus"]
    assert job.params["image_ids"] == sorted(store.images.values()) and job.params["threshold"] == 0.3
    assert job.params["requested_by"] == "tester" and job.params["via"] == "agent"
    assert (result.job_id, result.images) == (job.id, 6)
    assert result.text() == f"started job {job.id}: labeling person, bus on 6 images"


def test_named_images_and_threshold(store, fakes) -> None:
    args = {
        "classes": ["tie"],
        "images": ["zidane.jpg", store.images["bus.jpg"], "zidane.jpg"],
        "threshold": 0.5,
    }
    AUTO_LABEL(store.ctx(fakes, on_job=Queue()), args)
    (job,) = _jobs(store)
    assert job.params["image_ids"] == [store.images["zidane.jpg"], store.images["bus.jpg"]]
    assert job.params["threshold"] == 0.5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"classes": ["unicorn"]}, "cannot detect 'unicorn'"),
        ({"classes": ["person"], "images": ["zidanne.jpg"]}, "did you mean: zidane.jpg"),
        ({"classes": []}, "classes"),
    ],
)
def test_mistakes_queue_nothing(store, fakes, args, message) -> None:
    queue = Queue()
    with pytest.raises(ToolError, match=message):
        AUTO_LABEL(store.ctx(fakes, on_job=queue), args)
    assert queue.calls == [] and _jobs(store) == []


def test_a_viewer_cannot_start_a_job(store, fakes) -> None:
    from ops.caller import Caller
    from store.users import create_user, set_membership

    with new_session(store.engine) as session:
        user = create_user(session, username="vic")
        set_membership(session, user_id=user.id, project_id=store.project_id, role="viewer")
        session.commit()
    viewer = Caller("vic", user.id, False, via="agent")
    with pytest.raises(ToolError, match="job.start needs the annotator role"):
        AUTO_LABEL(store.ctx(fakes, caller=viewer), {"classes": ["person"]})
    assert _jobs(store) == []


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
