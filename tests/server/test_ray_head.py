"""`labelwright label` and `labelwright worker` on a real Ray head (`ray start --head`, 2 CPUs,
127.0.0.1; tests/rayhead.py), run as a user runs them: separate processes, the cluster named by
``--ray-address 127.0.0.1:port``, by ``auto`` through the file ``ray start`` wrote, and by
``RAY_ADDRESS``. The fake backends run inside the head's worker processes; every run must write
the same annotations as the in-process executor on the same images."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from server import cli_label
from server.jobs import JobRunner
from store.models import JobState
from tests.conftest import REPO
from tests.rayhead import RayHead
from tests.tools.conftest import FakeBackends, Store, ingest_store, make_photo_dir
from tests.tools.test_ray_label import rows
from tools.auto_label import KIND, LabelJob

pytestmark = pytest.mark.timeout(300)
CLASSES = "person,bus,tie"

# The real CLI with the fake stack: each model actor unpickles the FakeBackends class (from this
# checkout, on the head's PYTHONPATH) and builds it, as it would build the lite stack.
CLI_WITH_FAKES = (
    "import sys\n"
    "from server import cli_label\n"
    "from tests.tools.conftest import FakeBackends\n"
    "cli_label.backends_factory = lambda stack, models_dir, detector=None: FakeBackends\n"
    "from server.cli import main\n"
    "sys.argv = ['labelwright', *sys.argv[1:]]\n"
    "main()\n"
)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory, photos: dict[str, Path]) -> Path:
    return make_photo_dir(tmp_path_factory.mktemp("src"), photos, n_extra=2)


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory, source: Path) -> Counter:
    """The annotations of the in-process executor (``--executor thread``) on the same images."""
    store = ingest_store(tmp_path_factory.mktemp("thread"), source)
    runner = JobRunner(store.engine, {KIND: LabelJob(home=store.home, backends_factory=FakeBackends)})
    params = {"classes": CLASSES.split(","), "image_ids": sorted(store.images.values()), "threshold": 0.3}
    assert runner.run_job(runner.enqueue(store.project_id, KIND, params)).state == JobState.done
    found = rows(store.engine)
    assert sum(found.values()) > 0
    return found


@pytest.fixture
def project(home: Path, source: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setattr(cli_label, "backends_factory", lambda stack, models_dir, detector=None: FakeBackends)
    return ingest_store(home, source)


def labelwright(home: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``labelwright ARGS`` in a process of its own, with ``env`` on top of a clean Ray environment."""
    skip = ("RAY_", "LABELWRIGHT_DATABASE_URL")
    base = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    full = {**base, "LABELWRIGHT_HOME": str(home), "PYTHONPATH": str(REPO), **env}
    return subprocess.run(
        [sys.executable, "-c", CLI_WITH_FAKES, *args], cwd=REPO, env=full, capture_output=True, text=True,
        timeout=240,
    )  # fmt: skip


# `ray start --head` turns Ray's token authentication on (2.59+): a driver given an explicit address
# sends the token (~/.ray/auth_token) only with RAY_AUTH_MODE=token, as Ray's docs tell users to set;
# ``auto`` turns it on by itself.
TOKEN = {"RAY_AUTH_MODE": "token"}


@pytest.mark.parametrize("how", ["host:port", "auto"])
def test_label_on_a_ray_head_writes_what_the_in_process_run_writes(
    ray_head: RayHead, project: Store, in_process: Counter, how: str
) -> None:
    # auto: only the file `ray start` wrote names the cluster (RAY_TMPDIR leads to it, no RAY_ADDRESS)
    address, env = (ray_head.address, TOKEN) if how == "host:port" else ("auto", ray_head.env)
    ran = labelwright(
        project.home, "label", "--project", "p", "--classes", CLASSES, "--executor", "ray",
        "--ray-address", address, "--replicas", "2", "--json", env=env,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-3000:]
    summary = json.loads(ran.stdout)
    assert (summary["state"], summary["done"], summary["total"]) == ("done", 4, 4)
    assert rows(project.engine) == in_process  # same boxes, masks, scores and provenance


def test_a_worker_on_the_ray_head_runs_a_detached_job(ray_head: RayHead, project: Store, in_process) -> None:
    queued = CliRunner().invoke(cli_label.app, ["label", "--project", "p", "--classes", CLASSES, "--detach"])
    assert queued.exit_code == 0, queued.output
    job_id = int(queued.stdout.strip())
    # the worker's --ray-address is auto by default: here RAY_ADDRESS names the head (an explicit
    # address to Ray: the token goes with RAY_AUTH_MODE=token only)
    ran = labelwright(
        project.home, "worker", "--executor", "ray", "--replicas", "2", "--exit-when-idle", "--poll", "0.05",
        env={"RAY_ADDRESS": ray_head.address, **TOKEN},
    )  # fmt: skip
    assert ran.returncode == 0, " ".join(ran.stderr.split())[-3000:]
    assert f"job {job_id} done: 4/4" in ran.stderr
    assert rows(project.engine) == in_process
    assert ray_head.proc.poll() is None  # the drivers came and went; the cluster stays up


def test_an_explicit_address_without_the_token_mode_says_what_to_set(ray_head: RayHead, project) -> None:
    ran = labelwright(
        project.home, "label", "--project", "p", "--classes", CLASSES, "--executor", "ray",
        "--ray-address", ray_head.address, env={},
    )  # fmt: skip
    said = " ".join(ran.stderr.split())
    assert ran.returncode == 1 and "Traceback" not in ran.stderr
    assert f"no Ray cluster answers at --ray-address '{ray_head.address}'" in said
    assert "the cluster wants its authentication token: set RAY_AUTH_MODE=token" in said
