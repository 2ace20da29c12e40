"""The any-size ISNet: how `models fetch` builds it, and that the built graph is the same network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tools.models import catalog, fetch
from tools.models.spec import IsnetDynamic


def test_the_catalog_builds_it_from_the_pinned_imgly_package() -> None:
    entry = catalog.get("isnet-medium-dynamic")
    assert isinstance(entry.recipe, IsnetDynamic) and entry.recipe.resource == "/models/medium"
    assert fetch.recipe_artifacts(entry.recipe) == (catalog.IMGLY,)
    assert entry.sha256 is not None and entry.size  # the rewrite is byte-reproducible: pinned
    assert entry in catalog.entries("lite")  # `models fetch --stack lite` builds it


def test_fetch_hands_the_recipe_to_the_converter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def convert(tgz: Path, resource: str, out: Path, *, venv: Path, log: object) -> None:
        calls.append((tgz, resource, venv))
        out.write_bytes(b"onnx")

    monkeypatch.setattr(fetch, "convert_isnet", convert)
    recipe = IsnetDynamic(catalog.IMGLY, "/models/medium")
    out = tmp_path / "out.onnx"
    fetch._build(recipe, {catalog.IMGLY: tmp_path / "pkg.tgz"}, out, tmp_path / "venv", print)
    assert calls == [(tmp_path / "pkg.tgz", "/models/medium", tmp_path / "venv")]
    assert out.read_bytes() == b"onnx"


def _session(path: Path):  # noqa: ANN202
    from tools.backends.lite_detector import open_session

    if not path.is_file():
        pytest.skip(f"{path} missing: run `labelwright models fetch {path.stem}`")
    return open_session(path, 2)


@pytest.mark.slow
def test_the_built_graph_takes_any_multiple_of_64_and_equals_the_original_at_1024(models_dir: Path) -> None:
    dynamic = _session(models_dir / "lite" / "isnet-medium-dynamic.onnx")
    fixed = _session(models_dir / "lite" / "isnet-medium.onnx")
    assert [type(d) for d in dynamic.get_inputs()[0].shape] == [str, int, str, str]
    small = np.random.default_rng(0).random((2, 3, 320, 448), np.float32) - 0.5
    (out,) = dynamic.run(["output"], {"input": small})
    assert out.shape == (2, 1, 320, 448) and 0 <= out.min() and out.max() <= 1
    x = np.random.default_rng(1).random((1, 3, 1024, 1024), np.float32) - 0.5
    (a,) = dynamic.run(["output"], {"input": x})
    (b,) = fixed.run(["output"], {"input": x})
    assert np.abs(a - b).max() < 1e-3
