from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from store.db import new_session
from store.jobs import (
    LeaseLost,
    advance_cursor,
    claim_job,
    claim_next_job,
    create_job,
    finish_job,
    get_job,
    list_jobs,
    release_expired,
    renew_lease,
    request_cancel,
    requeue_stale_running,
    update_progress,
)
from store.models import JobState, Project


def test_lifecycle(session: Session, project: Project) -> None:
    job = create_job(session, project_id=project.id, kind="auto_label", params={"prompt": "car"}, total=10)
    assert job.state == JobState.queued and job.params == {"prompt": "car"}
    claimed = claim_next_job(session)
    assert claimed is not None and claimed.id == job.id and claimed.state == JobState.running
    assert claim_next_job(session) is None
    progressed = update_progress(session, job_id=job.id, cursor=4)
    assert (progressed.cursor, progressed.total) == (4, 10)
    done = finish_job(session, job_id=job.id, state="done")
    assert done.state == JobState.done and get_job(session, job_id=job.id).state == JobState.done
    assert get_job(session, job_id=999) is None


def test_claims_oldest_first_and_by_kind(session: Session, project: Project) -> None:
    first = create_job(session, project_id=project.id, kind="export")
    second = create_job(session, project_id=project.id, kind="auto_label")
    assert claim_next_job(session, kinds=["auto_label"]).id == second.id
    assert claim_next_job(session).id == first.id


def test_concurrent_claims_hand_each_job_out_once(engine: Engine, session: Session, project: Project) -> None:
    ids = {create_job(session, project_id=project.id, kind="auto_label").id for _ in range(20)}
    session.commit()
    claimed: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        with new_session(engine) as own:
            while (job := claim_next_job(own)) is not None:
                with lock:
                    claimed.append(job.id)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(ids)


def test_cancel(session: Session, project: Project) -> None:
    queued = create_job(session, project_id=project.id, kind="a")
    running = create_job(session, project_id=project.id, kind="b")
    claim_next_job(session, kinds=["b"])
    assert request_cancel(session, job_id=queued.id).state == JobState.cancelled
    asked = request_cancel(session, job_id=running.id)
    assert asked.state == JobState.running and asked.cancel_requested is True
    assert update_progress(session, job_id=running.id, cursor=1).cancel_requested is True
    assert claim_next_job(session) is None  # the cancelled one is never handed out
    assert request_cancel(session, job_id=12345) is None


def test_progress_seen_by_another_session(engine: Engine, session: Session, project: Project) -> None:
    job = create_job(session, project_id=project.id, kind="a", total=5)
    session.commit()
    with new_session(engine) as worker:
        update_progress(worker, job_id=job.id, cursor=3, total=6)
    fresh = get_job(session, job_id=job.id)
    assert (fresh.cursor, fresh.total) == (3, 6)


@pytest.mark.parametrize(
    ("state", "message"), [("running", "finish state must be one of"), ("bogus", "bogus")]
)
def test_finish_refuses_non_terminal_states(
    session: Session, project: Project, state: str, message: str
) -> None:
    job = create_job(session, project_id=project.id, kind="a")
    with pytest.raises(ValueError, match=message):
        finish_job(session, job_id=job.id, state=state)


def test_bad_progress_is_refused(session: Session, project: Project) -> None:
    job = create_job(session, project_id=project.id, kind="a")
    with pytest.raises(ValueError, match="cursor=-1"):
        update_progress(session, job_id=job.id, cursor=-1)
    with pytest.raises(ValueError, match="kind must be a non-empty"):
        create_job(session, project_id=project.id, kind="")


def test_failed_job_keeps_its_error_and_list_filters(session: Session, project: Project) -> None:
    a = create_job(session, project_id=project.id, kind="a")
    b = create_job(session, project_id=project.id, kind="b")
    claim_next_job(session, kinds=["a"])
    finish_job(session, job_id=a.id, state=JobState.failed, error="model file missing")
    assert [j.id for j in list_jobs(session, project_id=project.id)] == [b.id, a.id]
    (failed,) = list_jobs(session, state="failed")
    assert failed.error == "model file missing"
    assert [j.id for j in list_jobs(session, kind="b")] == [b.id]


def test_requeue_stale_running_for_crash_recovery(session: Session, project: Project) -> None:
    stuck = create_job(session, project_id=project.id, kind="a", total=100)
    claim_next_job(session)
    update_progress(session, job_id=stuck.id, cursor=40)
    leaving = create_job(session, project_id=project.id, kind="a")
    claim_next_job(session)
    request_cancel(session, job_id=leaving.id)
    assert requeue_stale_running(session, older_than=timedelta(hours=1)) == 0  # still fresh
    assert requeue_stale_running(session) == 1
    again = get_job(session, job_id=stuck.id)
    assert again.state == JobState.queued and again.cursor == 40  # resumes where it stopped
    assert get_job(session, job_id=leaving.id).state == JobState.cancelled
    assert claim_next_job(session).id == stuck.id


def test_a_claim_carries_a_lease_renewed_by_its_holder_only(session: Session, project: Project) -> None:
    job = create_job(session, project_id=project.id, kind="auto_label", total=3)
    claimed = claim_next_job(session, worker="w1", lease=timedelta(seconds=30))
    assert claimed.worker == "w1" and claimed.lease_until is not None
    before = claimed.lease_until
    assert renew_lease(session, job_id=job.id, worker="w1", lease=timedelta(seconds=60)) is True
    assert get_job(session, job_id=job.id).lease_until > before
    assert renew_lease(session, job_id=job.id, worker="w2") is False
    assert release_expired(session) == []  # the lease holds
    assert claim_next_job(session, worker="w2") is None


def test_an_expired_lease_hands_the_job_to_the_next_worker_at_its_cursor(
    session: Session, project: Project
) -> None:
    job = create_job(session, project_id=project.id, kind="auto_label", total=5)
    claim_next_job(session, worker="dead", lease=timedelta(seconds=-1))  # already ran out
    advance_cursor(session, job_id=job.id, worker="dead", cursor=1)
    session.commit()
    resumed = claim_next_job(session, worker="alive")
    assert (resumed.id, resumed.worker, resumed.cursor) == (job.id, "alive", 1)
    # the old holder's next step is refused, so the item is never committed twice
    with pytest.raises(LeaseLost, match="no longer run by 'dead'"):
        advance_cursor(session, job_id=job.id, worker="dead", cursor=2)
    session.rollback()
    advance_cursor(session, job_id=job.id, worker="alive", cursor=2)
    session.commit()
    with pytest.raises(LeaseLost):  # a repeated step (same cursor) is refused too
        advance_cursor(session, job_id=job.id, worker="alive", cursor=2)
    session.rollback()
    assert get_job(session, job_id=job.id).cursor == 2


def test_jobs_of_gone_workers_are_released_at_once(session: Session, project: Project) -> None:
    a = create_job(session, project_id=project.id, kind="k")
    b = create_job(session, project_id=project.id, kind="k")
    assert claim_job(session, job_id=a.id, worker="gone") and claim_job(session, job_id=b.id, worker="alive")
    assert claim_job(session, job_id=a.id, worker="other") is False  # running: not claimable
    request_cancel(session, job_id=a.id)
    assert release_expired(session, gone_workers=["gone"]) == [a.id]
    assert get_job(session, job_id=a.id).state == JobState.cancelled  # a cancel asked for wins
    assert get_job(session, job_id=b.id).state == JobState.running
    assert release_expired(session, gone_workers=[]) == []
