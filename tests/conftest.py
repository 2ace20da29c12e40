"""Fixtures shared by every layer: a data home per test, the model cache, real photos."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


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
