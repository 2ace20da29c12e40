"""The lite stack's segmenter: the any-size ISNet when fetched, else the fixed file, else GrabCut."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tools.backends.stacks import build_backends
from tools.models import catalog


def _place(models_dir: Path, model_id: str) -> Path:
    """A stand-in file of the catalog's size (sparse): the segmenter opens nothing until a prompt."""
    entry = catalog.get(model_id)
    assert entry.path is not None
    path = models_dir / entry.path
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.truncate(entry.size or 1)
    return path


def test_the_any_size_graph_is_preferred(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _place(tmp_path, "isnet-medium")
    dynamic = _place(tmp_path, "isnet-medium-dynamic")
    with caplog.at_level(logging.WARNING):
        segmenter = build_backends("lite", tmp_path).segmenter
    assert segmenter.isnet == dynamic and segmenter.model_id == "lite-isnet-medium"
    assert not caplog.records


def test_the_fixed_file_still_works_and_says_how_to_go_faster(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fixed = _place(tmp_path, "isnet-medium")
    with caplog.at_level(logging.WARNING):
        segmenter = build_backends("lite", tmp_path).segmenter
    assert segmenter.isnet == fixed and segmenter.model_id == "lite-isnet-medium"
    assert "models fetch isnet-medium-dynamic" in caplog.text


def test_small_has_no_any_size_variant_and_uses_its_file(tmp_path: Path) -> None:
    fixed = _place(tmp_path, "isnet-small")
    segmenter = build_backends("lite", tmp_path, segmenter="lite-isnet-small").segmenter
    assert segmenter.isnet == fixed and segmenter.model_id == "lite-isnet-small"
