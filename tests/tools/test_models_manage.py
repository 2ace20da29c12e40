"""list, verify and import on a temporary models dir: corrupt files are caught, mislabelled ones refused."""

from __future__ import annotations

import json
import shutil
import struct
import zipfile
from pathlib import Path

import pytest

from tools.models import catalog, manifest
from tools.models.fetch import fetch
from tools.models.importer import format_problem, import_dir
from tools.models.manage import list_models, verify_models


def torch_like_checkpoint(path: Path, payload: bytes = b"weights") -> Path:
    """A zip archive, as torch.save writes since 1.6 (enough for the format check)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
    return path


def safetensors_file(path: Path) -> Path:
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0\0\0\0")
    return path


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def models(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    fetch(root, [catalog.get("coco80-labels")], cache=tmp_path / "cache", log=lambda _m: None)
    return root


def by_id(rows):
    return {row.entry.id: row for row in rows}


def test_list_reports_present_missing_and_service(models: Path) -> None:
    rows = by_id(list_models(models))
    assert rows["coco80-labels"].state == "present"
    assert rows["coco80-labels"].size == catalog.get("coco80-labels").size
    assert rows["coco80-labels"].sha256 == catalog.get("coco80-labels").sha256
    assert rows["centernet"].state == "missing" and rows["centernet"].path == models / "lite/centernet.onnx"
    assert rows["ollama"].state == "service"


def test_verify_detects_a_corrupted_copy(models: Path) -> None:
    assert by_id(verify_models(models))["coco80-labels"].verdict == "ok"
    flip_a_byte(models / "lite/coco80.json")
    result = by_id(verify_models(models))["coco80-labels"]
    assert result.verdict == "corrupt" and result.detail == "sha256 differs"
    assert result.actual != result.expected


def test_verify_detects_truncation_and_unrecorded_files(models: Path) -> None:
    path = models / "lite/coco80.json"
    path.write_bytes(path.read_bytes()[:-10])
    assert by_id(verify_models(models))["coco80-labels"].verdict == "corrupt"
    torch_like_checkpoint(models / "full/sam2.1_hiera_tiny.pt")  # copied by hand, never recorded
    assert by_id(verify_models(models))["sam2.1-hiera-tiny"].verdict == "unrecorded"


def test_import_copies_recognised_files_and_reports_the_rest(models: Path, tmp_path: Path) -> None:
    src = tmp_path / "downloads"
    torch_like_checkpoint(src / "yolov8m-worldv2.pt")
    torch_like_checkpoint(src / "nested" / "sam2.1_hiera_small.pt")
    torch_like_checkpoint(src / "open_clip_pytorch_model.bin")
    (src / "sam2.1_hiera_large.pt").write_bytes(b"<html>not found</html>")  # a fake under a real name
    (src / "README.txt").write_text("hello")

    report = import_dir(models, src)

    imported = {i.model_id: i for i in report.imported}
    assert set(imported) == {"yolo-world-v2", "sam2.1-hiera-small", "clip-vit-b-32"}
    assert imported["clip-vit-b-32"].target == models / "full/open_clip_ViT-B-32.bin"
    assert [(p.name, why) for p, why in report.invalid] == [
        ("sam2.1_hiera_large.pt", "not a torch checkpoint (neither a zip archive nor a pickle)")
    ]
    assert [p.name for p in report.unrecognised] == ["README.txt"]
    assert not (models / "full/sam2.1_hiera_large.pt").exists()
    assert (models / "full/yolov8m-worldv2.pt").read_bytes() == (src / "yolov8m-worldv2.pt").read_bytes()
    records = manifest.load(models)
    assert records["full/yolov8m-worldv2.pt"].origin == "import"
    assert records["full/yolov8m-worldv2.pt"].sha256 == imported["yolo-world-v2"].sha256

    verdicts = by_id(verify_models(models))
    assert verdicts["yolo-world-v2"].verdict == verdicts["clip-vit-b-32"].verdict == "ok"
    flip_a_byte(models / "full/yolov8m-worldv2.pt")
    assert by_id(verify_models(models))["yolo-world-v2"].verdict == "corrupt"


def test_second_import_copies_nothing(models: Path, tmp_path: Path) -> None:
    src = tmp_path / "downloads"
    torch_like_checkpoint(src / "sam2.1_hiera_tiny.pt")
    import_dir(models, src)
    stamp = (models / "full/sam2.1_hiera_tiny.pt").stat().st_mtime_ns
    again = import_dir(models, src)
    assert [i.copied for i in again.imported] == [False]
    assert (models / "full/sam2.1_hiera_tiny.pt").stat().st_mtime_ns == stamp


def test_import_refuses_two_files_for_one_target_before_copying(models: Path, tmp_path: Path) -> None:
    src = tmp_path / "downloads"
    (src / "a").mkdir(parents=True)
    safetensors_file(src / "a" / "open_clip_model.safetensors")
    safetensors_file(src / "open_clip_ViT-B-32.safetensors")
    with pytest.raises(ValueError, match="both be imported as full/open_clip_ViT-B-32.safetensors"):
        import_dir(models, src)
    assert not (models / "full").exists()


def test_import_of_a_missing_dir_is_a_clear_error(models: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="expected a directory"):
        import_dir(models, tmp_path / "nope")


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("ok.safetensors", None, None),
        ("bad.safetensors", b"\xff" * 16, "safetensors header length"),
        ("short.safetensors", b"abc", "too short for a safetensors file"),
        ("legacy.pt", b"\x80\x02\x8a\x0alegacy", None),
        ("text.pt", b"hello world", "not a torch checkpoint (neither a zip archive nor a pickle)"),
    ],
)
def test_format_check(tmp_path: Path, name: str, content: bytes | None, problem: str | None) -> None:
    path = tmp_path / name
    if content is None:
        safetensors_file(path)
    else:
        path.write_bytes(content)
    found = format_problem(path)
    assert found == problem if problem is None else found is not None and found.startswith(problem)


@pytest.mark.slow
def test_verify_detects_corruption_of_real_weights(models_dir: Path, tmp_path: Path) -> None:
    source = models_dir / "lite/efficientnet-lite0.pth"
    if not source.is_file():
        pytest.skip("run `labelwright models fetch efficientnet-lite0` first")
    copy = tmp_path / "models/lite/efficientnet-lite0.pth"
    copy.parent.mkdir(parents=True)
    shutil.copyfile(source, copy)
    entry = [catalog.get("efficientnet-lite0")]
    assert verify_models(tmp_path / "models", entry)[0].verdict == "ok"
    flip_a_byte(copy)
    assert verify_models(tmp_path / "models", entry)[0].verdict == "corrupt"
