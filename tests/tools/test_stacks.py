"""Model stacks: ids -> builders, lazy backends, clear errors for unknown stacks and ids."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from tools.backends.base import Detector, Segmenter, Verifier
from tools.backends.stacks import MODELS, STACKS, build_backends


def test_every_stack_names_models_of_the_right_role() -> None:
    for ids in STACKS.values():
        for role, model_id in ids.items():
            assert MODELS[model_id][0] == role


def test_the_brief_model_ids_exist() -> None:
    expected = {
        "lite-centernet", "lite-nanodet", "lite-isnet-small", "lite-isnet-medium", "lite-grabcut",
        "lite-efficientnet", "yolo-world-v2-s", "sam2.1-tiny", "sam2.1-small", "sam2.1-base_plus",
        "sam2.1-large", "clip-vit-b-32",
    }  # fmt: skip
    assert expected <= set(MODELS)


def test_unknown_stack_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'medium'.*\['full', 'lite'\]"):
        build_backends("medium", tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"detector": "yolo-world-v9"}, "unknown detector model id 'yolo-world-v9'.*lite-nanodet"),
        ({"segmenter": "lite-nanodet"}, "unknown segmenter model id.*lite-grabcut"),
        ({"verifier": "sam2.1-tiny"}, "unknown verifier model id.*clip-vit-b-32"),
    ],
)
def test_unknown_or_misplaced_model_ids_name_the_choices(
    tmp_path: Path, kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_backends("lite", tmp_path, **kwargs)


def test_unknown_options_are_refused_not_ignored(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\['random_weights'\].*random_init"):
        build_backends("full", tmp_path, random_weights=True)


def test_building_loads_nothing_until_a_backend_is_used(tmp_path: Path) -> None:
    before = {m for m in ("onnxruntime", "ultralytics", "sam2", "open_clip") if m in sys.modules}
    backends = build_backends("full", tmp_path, device="cpu")
    assert backends.ids == STACKS["full"]
    assert {m for m in ("onnxruntime", "ultralytics", "sam2", "open_clip") if m in sys.modules} == before


def test_missing_lite_files_raise_an_actionable_error(tmp_path: Path) -> None:
    from tools.models.resolve import ModelMissing

    backends = build_backends("lite", tmp_path)
    with pytest.raises(ModelMissing, match="labelwright models fetch nanodet"):
        _ = backends.detector
    with pytest.raises(ModelMissing, match="labelwright models fetch efficientnet-lite0"):
        _ = backends.verifier


def test_missing_isnet_degrades_to_grabcut_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        segmenter = build_backends("lite", tmp_path).segmenter
    assert isinstance(segmenter, Segmenter) and segmenter.model_id == "lite-grabcut"
    assert "isnet-medium" in caplog.text and "GrabCut" in caplog.text


def test_grabcut_can_be_chosen_and_is_built_once(tmp_path: Path) -> None:
    backends = build_backends("lite", tmp_path, segmenter="lite-grabcut")
    assert backends.segmenter is backends.segmenter
    backends.segmenter.set_image(np.zeros((20, 20, 3), np.uint8))
    masks, _ = backends.segmenter.segment(boxes=np.array([[2, 2, 18, 18]]))
    assert masks.shape == (1, 20, 20)


@pytest.mark.slow
@pytest.mark.parametrize("detector", ["lite-nanodet", "lite-centernet"])
def test_lite_stack_builds_from_the_models_dir(models_dir: Path, detector: str) -> None:
    from tools.models.resolve import ModelMissing

    backends = build_backends("lite", models_dir, detector=detector, threads=2)
    try:
        found = (backends.detector, backends.segmenter, backends.verifier)
    except ModelMissing as missing:
        pytest.skip(str(missing))
    assert isinstance(found[0], Detector) and found[0].model_id == detector
    assert isinstance(found[1], Segmenter) and found[1].model_id == "lite-isnet-medium"
    assert isinstance(found[2], Verifier) and found[2].model_id == "lite-efficientnet"
    assert found[0].detect(np.zeros((64, 64, 3), np.uint8), ["person"], 0.5).xyxy.shape[1] == 4


def test_a_project_detector_id_is_accepted_once_trained(tmp_path: Path) -> None:
    from tools.backends.stacks import build_backends, model
    from tools.models.trained import register

    with pytest.raises(ValueError, match="no detector 'project-7-yolo' trained yet"):
        build_backends("lite", tmp_path, detector="project-7-yolo")
    with pytest.raises(ValueError, match="like 'project-3-yolo'"):
        build_backends("lite", tmp_path, detector="project-x")
    with pytest.raises(ValueError, match="or project-<id>-yolo"):
        build_backends("lite", tmp_path, detector="yolo-nano")
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"PK\x03\x04 not really")
    made = register(
        tmp_path, project_id=7, job_id=2, weights=weights, classes=["coin"], provenance={"imgsz": 128}
    )
    backends = build_backends("lite", tmp_path, detector="project-7-yolo")
    assert backends.ids["detector"] == "project-7-yolo" and model("project-7-yolo")[0] == "detector"
    assert made.model_id == "project-7-yolo-job2" and (tmp_path / made.weights).is_file()
    with pytest.raises(KeyError):
        model("nope")


def test_precision_passes_through_to_the_full_stack_and_the_lite_one_ignores_it(tmp_path: Path) -> None:
    from tools.backends.base import BatchDetector, BatchSegmenter

    full = build_backends("full", tmp_path, device="cpu", random_init=True, precision="auto")
    assert isinstance(full.detector, BatchDetector) and isinstance(full.segmenter, BatchSegmenter)
    assert (full.detector.precision, full.segmenter.precision, full.verifier.precision) == ("fp32",) * 3
    half = build_backends("full", tmp_path, device="cpu", random_init=True, precision="fp16")
    with pytest.raises(ValueError, match="'fp16' needs a CUDA device, got device 'cpu'"):
        _ = half.verifier
    lite = build_backends("lite", tmp_path, segmenter="lite-grabcut", precision="fp16")
    assert lite.segmenter.model_id == "lite-grabcut"
