"""`labelwright label --detach`, `labelwright worker` and `labelwright db`, on SQLite and PostgreSQL
(LABELWRIGHT_DATABASE_URL), with fake vision backends swapped in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from server import cli_db, cli_label, cli_worker
from server.settings import get_settings
from store.db import head_revision, new_session, open_engine
from store.jobs import get_job
from store.models import Annotation, JobState
from tests.conftest import is_postgres
from tests.tools.conftest import FakeBackends, ingest_store, make_photo_dir

RUN = CliRunner()


@pytest.fixture
def project(home: Path, tmp_path: Path, photos: dict[str, Path], engine_url, monkeypatch: pytest.MonkeyPatch):
    if is_postgres(engine_url):
        monkeypatch.setenv("LABELWRIGHT_DATABASE_URL", str(engine_url))
    else:
        monkeypatch.delenv("LABELWRIGHT_DATABASE_URL", raising=False)
        engine_url = home / "labelwright.db"
    get_settings.cache_clear()
    store = ingest_store(home, make_photo_dir(tmp_path / "src", photos), database=engine_url)
    backends = FakeBackends()
    monkeypatch.setattr(cli_label, "backends_factory", lambda *_, **__: lambda: backends)
    yield store
    store.engine.dispose()
    get_settings.cache_clear()


def test_detach_queues_the_job_and_a_worker_runs_it(project) -> None:
    queued = RUN.invoke(cli_label.app, ["label", "-p", "p", "--classes", "person,bus", "--detach"])
    assert queued.exit_code == 0, queued.output
    job_id = int(queued.stdout.strip())
    listed = json.loads(RUN.invoke(cli_label.app, ["jobs", "list", "--json"]).stdout)
    assert [(j["id"], j["state"], j["done"], j["total"]) for j in listed] == [(job_id, "queued", 0, 6)]
    again = RUN.invoke(cli_label.app, ["label", "-p", "p", "--classes", "person,bus", "--detach", "--json"])
    assert json.loads(again.stdout) == {"job_id": job_id, "state": "queued"}  # the same job, not a second

    ran = RUN.invoke(cli_worker.app, ["--exit-when-idle", "--poll", "0.05"])
    assert ran.exit_code == 0, ran.output
    with new_session(project.engine) as session:
        job = get_job(session, job_id=job_id)
        n = len(session.exec(Annotation.__table__.select().where(Annotation.job_id == job_id)).all())
    assert (job.state, job.cursor, job.worker) == (JobState.done, 6, "") and n > 0
    listed = json.loads(RUN.invoke(cli_label.app, ["jobs", "list", "--json"]).stdout)
    assert (listed[0]["state"], listed[0]["done"]) == ("done", 6)


def test_worker_refuses_an_unknown_stack(project) -> None:
    result = RUN.invoke(cli_worker.app, ["--stack", "huge", "--exit-when-idle"])
    assert result.exit_code != 0 and "--stack must be lite or full, got 'huge'" in result.output


def test_db_current_and_upgrade(project, engine_url) -> None:
    shown = json.loads(RUN.invoke(cli_db.app, ["current", "--json"]).stdout)
    assert shown["revision"] == shown["head"] == head_revision()
    assert shown["dialect"] == ("postgresql" if is_postgres(engine_url) else "sqlite")
    back = open_engine(get_settings().database, upgrade=False)
    from store.db import downgrade

    downgrade(back, "0004")  # before the job leases
    back.dispose()
    assert "behind" in RUN.invoke(cli_db.app, ["current"]).stdout
    upgraded = RUN.invoke(cli_db.app, ["upgrade"])
    assert upgraded.exit_code == 0 and f"at revision {head_revision()} (was 0004)" in upgraded.output
    assert json.loads(RUN.invoke(cli_db.app, ["current", "--json"]).stdout)["revision"] == head_revision()


def test_worker_batch_runs_the_models_ahead_in_batches(project, monkeypatch: pytest.MonkeyPatch) -> None:
    from tools import overlapped_label

    sizes: list[int] = []
    real = overlapped_label.infer_batch

    def counted(backends, rgbs, *args):  # type: ignore[no-untyped-def]
        sizes.append(len(rgbs))
        return real(backends, rgbs, *args)

    monkeypatch.setattr(overlapped_label, "infer_batch", counted)
    queued = RUN.invoke(cli_label.app, ["label", "-p", "p", "--classes", "person,bus", "--detach"])
    job_id = int(queued.stdout.strip())
    ran = RUN.invoke(cli_worker.app, ["--exit-when-idle", "--poll", "0.05", "--batch", "3"])
    assert ran.exit_code == 0, ran.output
    with new_session(project.engine) as session:
        job = get_job(session, job_id=job_id)
        n = len(session.exec(Annotation.__table__.select().where(Annotation.job_id == job_id)).all())
    assert (job.state, job.cursor) == (JobState.done, 6) and n > 0
    assert sum(sizes) == 6 and max(sizes) <= 3  # six images, through the batch path, 3 at most a call
