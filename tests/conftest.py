"""Fixtures shared by every layer: a data home per test, the model cache, real photos."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# `labelwright chat` keeps a shared LLM endpoint alive for 10 idle minutes; a test run must leave
# no process behind, so tests load a private copy unless a test asks otherwise.
os.environ.setdefault("LABELWRIGHT_LLM_KEEP_ALIVE_S", "0")


def _ultralytics_assets() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("ultralytics")
    assert spec is not None and spec.origin is not None, "ultralytics is a test dependency"
    return Path(spec.origin).parent / "assets"


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The shared weight cache (never a per-test copy: the weights are large)."""
    return Path(os.environ.get("LABELWRIGHT_MODELS", Path.home() / ".labelwright" / "models"))


@pytest.fixture(scope="session")
def photos() -> dict[str, Path]:
    """Real photos shipped by ultralytics: a bus with pedestrians, and two people with a tie."""
    assets = _ultralytics_assets()
    found = {p.name: p for p in (assets / "bus.jpg", assets / "zidane.jpg")}
    assert all(p.is_file() for p in found.values())
    return found


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, models_dir: Path) -> Path:
    """A fresh LABELWRIGHT_HOME for CLI and server tests, reusing the shared model cache."""
    from server.settings import get_settings

    data = tmp_path / "home"
    monkeypatch.setenv("LABELWRIGHT_HOME", str(data))
    monkeypatch.setenv("LABELWRIGHT_MODELS", str(models_dir))
    get_settings.cache_clear()
    yield data
    get_settings.cache_clear()


# -- the database engines: every store, server and job test that takes `engine_url` runs on both --

ENGINES = ("sqlite", "postgresql")


def _engine_params() -> list:
    """SQLite and PostgreSQL; ``LABELWRIGHT_TEST_ENGINES=sqlite`` narrows a local run to one."""
    wanted = os.environ.get("LABELWRIGHT_TEST_ENGINES", ",".join(ENGINES)).split(",")
    unknown = sorted(set(wanted) - set(ENGINES))
    if unknown:
        raise ValueError(f"LABELWRIGHT_TEST_ENGINES must name {ENGINES}, got {unknown}")
    mark = pytest.mark.postgres
    return [pytest.param(e, marks=mark) if e == "postgresql" else e for e in ENGINES if e in wanted]


ENGINE_PARAMS = _engine_params()


@pytest.fixture(scope="session")
def pg_cluster():
    """One throwaway PostgreSQL cluster for the whole session (skips its tests where none exists)."""
    from tests.pgcluster import PgCluster, find_bindir

    bindir = find_bindir()
    if bindir is None:
        pytest.skip(
            "PostgreSQL binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin; "
            "`./dev test` installs Debian's postgresql when run as root"
        )
    import signal

    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:  # a killed run still stops its cluster:
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # pytest ends as on Ctrl-C
    try:
        cluster = PgCluster(bindir)
    except (KeyError, RuntimeError, OSError) as exc:
        if os.environ.get("CI"):  # CI must run these cases: a cluster that cannot start fails it
            raise
        pytest.skip(f"could not start a PostgreSQL cluster with {bindir}: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def pg_template(pg_cluster) -> str:
    """A database migrated to head, copied for each test."""
    from store.db import open_engine

    name = pg_cluster.create("template")
    open_engine(pg_cluster.url(name)).dispose()
    return name


def fresh_database(request: pytest.FixtureRequest, tmp_path: Path, *, migrated: bool = True) -> str | Path:
    """A new, private database of the engine the test is parametrized with: a SQLite file path in
    ``tmp_path`` or the URL of a PostgreSQL database (dropped after the test)."""
    callspec = getattr(request.node, "callspec", None)
    parametrized = callspec.params.get("engine_url") if callspec else None
    engine = getattr(request, "param", None) or parametrized or "sqlite"
    if engine == "sqlite":
        return tmp_path / "labelwright.db"
    cluster = request.getfixturevalue("pg_cluster")
    name = cluster.create("t", template=request.getfixturevalue("pg_template") if migrated else None)
    request.addfinalizer(lambda: cluster.drop(name))
    return cluster.url(name)


@pytest.fixture(params=ENGINE_PARAMS)
def engine_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """A fresh database for one test, on SQLite and on PostgreSQL: a file path or a URL."""
    return fresh_database(request, tmp_path)


def is_postgres(url_or_path: str | Path) -> bool:
    return str(url_or_path).startswith("postgresql")


CLIPS = Path("/usr/share/doc/opencv-doc/examples/data")


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real clips from Debian's opencv-doc (``./dev`` installs it): people walking (vtest.avi),
    Megamind.avi, tree.avi and Megamind_bugy.avi; gzipped copies are unpacked into a temp dir."""
    import gzip
    import shutil

    names = ("vtest.avi", "Megamind.avi", "tree.avi", "Megamind_bugy.avi")
    out, found = tmp_path_factory.mktemp("clips"), {}
    for name in names:
        plain, packed = CLIPS / name, CLIPS / f"{name}.gz"
        if plain.is_file():
            found[name] = plain
        elif packed.is_file():
            with gzip.open(packed) as src, open(out / name, "wb") as dst:
                shutil.copyfileobj(src, dst)
            found[name] = out / name
    missing = sorted(set(names) - set(found))
    assert not missing, f"test clips {missing} missing from {CLIPS}: install opencv-doc (./dev setup)"
    return found


def _ray_on_loopback_only() -> None:
    """Skip unless ray is installed and this process sees only loopback (see the skip message)."""
    pytest.importorskip("ray")
    if {name for _index, name in socket.if_nameindex()} - {"lo"}:
        pytest.skip(
            "Ray 2.60 binds its servers on every interface, and test servers must stay on loopback: "
            "`./dev test` runs the suite in a network namespace holding only loopback (needs root)"
        )


@pytest.fixture(scope="session")
def ray_cluster():
    """One private Ray for the session (``--ray-address local``: 2 CPUs, no dashboard),
    stopped at its end; skipped where ray is not installed."""
    _ray_on_loopback_only()
    import ray

    from server.ray_cluster import connect

    resources = connect("local", num_cpus=2)
    yield resources
    ray.shutdown()


@pytest.fixture(scope="session")
def ray_head():
    """A real Ray head for the session, started by ``ray start --head`` (2 CPUs, 127.0.0.1, no
    dashboard; tests/rayhead.py) and stopped at its end, also when the run fails or is killed."""
    _ray_on_loopback_only()
    import signal

    from tests.rayhead import RayHead

    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:  # a killed run still stops its head
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    head = RayHead(REPO)
    try:
        yield head
    finally:
        head.stop()
