"""`labelwright label --executor ray` on a real local Ray (fake backends inside the actors), and the
refusals of a cluster that cannot place the replicas or a wrong executor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from server import cli_label
from tests.tools.conftest import FakeBackends, ingest_store, make_photo_dir

RUN = CliRunner()
pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def project(home: Path, tmp_path: Path, photos: dict[str, Path], monkeypatch: pytest.MonkeyPatch):
    # the actors build the stack from this factory: the FakeBackends class itself (picklable)
    monkeypatch.setattr(cli_label, "backends_factory", lambda stack, models_dir, detector=None: FakeBackends)
    return ingest_store(home, make_photo_dir(tmp_path / "src", photos, n_extra=2))


def label(*extra: str):
    return RUN.invoke(cli_label.app, ["label", "--project", "p", "--classes", "person,bus,tie", *extra])


def said(result) -> str:
    return " ".join(result.output.split())  # rich wraps long lines


def test_label_on_ray_matches_the_thread_executor(ray_cluster, project) -> None:
    on_ray = label("--executor", "ray", "--ray-address", "local", "--replicas", "2", "--json")
    assert on_ray.exit_code == 0, on_ray.output
    data = json.loads(on_ray.stdout)
    assert (data["state"], data["done"], data["total"]) == ("done", 4, 4)
    assert "executor" not in data["params"]  # where it ran is not part of the job: either resumes it
    rerun = label("--threshold", "0.31", "--json")  # a new job on the in-process stack
    assert rerun.exit_code == 0, rerun.output
    assert json.loads(rerun.stdout)["annotations"] == data["annotations"]


def test_refusals_name_what_was_expected(ray_cluster, project) -> None:
    gpus = label("--executor", "ray", "--ray-address", "local", "--gpus-per-replica", "1")
    assert gpus.exit_code == 1
    assert "cannot place 1 model replicas: GPU 1 wanted, 0 in the cluster" in said(gpus)
    wrong = label("--executor", "dask")
    assert wrong.exit_code == 1 and "--executor must be one of thread, ray, got 'dask'" in said(wrong)
    detached = label("--executor", "ray", "--detach")
    assert detached.exit_code == 1 and "labelwright worker --executor ray" in said(detached)


def test_a_worker_on_ray_runs_a_detached_job(ray_cluster, project) -> None:
    from server import cli_worker
    from store.db import new_session
    from store.jobs import get_job
    from store.models import JobState

    queued = label("--detach")
    assert queued.exit_code == 0, queued.output
    job_id = int(queued.stdout.strip())
    args = [
        "--executor",
        "ray",
        "--ray-address",
        "local",
        "--replicas",
        "2",
        "--exit-when-idle",
        "--poll",
        "0.05",
    ]
    ran = RUN.invoke(cli_worker.app, args)
    assert ran.exit_code == 0, ran.output
    with new_session(project.engine) as session:
        job = get_job(session, job_id=job_id)
    assert (job.state, job.cursor, job.total) == (JobState.done, 4, 4)
    on_thread = label("--threshold", "0.31", "--json")
    summary = RUN.invoke(cli_label.app, ["label", "--project", "p", "--classes", "person,bus,tie", "--json"])
    assert json.loads(summary.stdout)["annotations"] == json.loads(on_thread.stdout)["annotations"]


def test_an_address_where_no_cluster_answers_is_refused_at_once(project) -> None:
    """No Ray is started here: ``ray.init`` would retry such an address for minutes."""
    import time

    from server import cli_worker
    from tests.rayhead import free_port

    closed = f"127.0.0.1:{free_port()}"
    t = time.monotonic()
    nobody = label("--executor", "ray", "--ray-address", closed)
    assert nobody.exit_code == 1 and "Traceback" not in nobody.output
    assert f"no Ray cluster answers at --ray-address '{closed}'" in said(nobody)  # and where Ray looked:
    assert "Connection refused; start one with `ray start --head`" in said(nobody)  # 127.0.0.1 may be
    # mapped to the machine's address
    worker = RUN.invoke(cli_worker.app, ["--executor", "ray", "--ray-address", closed, "--exit-when-idle"])
    assert worker.exit_code == 2 and "no Ray cluster answers" in said(worker)
    assert time.monotonic() - t < 30
    garbled = label("--executor", "ray", "--ray-address", "headnode")
    assert garbled.exit_code == 1
    assert "--ray-address must be local, auto, host:port or ray://host:port, got 'headnode'" in said(garbled)
