"""Fixtures shared by every layer: a data home per test, the model cache, real photos."""

from __future__ import annotations

import os
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
