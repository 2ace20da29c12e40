"""YOLO export: label files ultralytics loads, polygons that carry parts and holes, data.yaml."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlmodel import Session

from store.db import new_session, open_engine
from store.polygons import mask_from_polygons
from store.yolo_export import export_yolo
from tests.store.shapes import HEIGHT, SHAPES, WIDTH, seed_project


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Session, int, Path]:
    session = new_session(open_engine(tmp_path / "store.db"))
    project_id = seed_project(session, tmp_path / "photos")
    yield session, project_id, tmp_path
    session.close()


def _polygon(line: str) -> tuple[int, list[float]]:
    values = line.split()
    xy = np.asarray(values[1:], dtype=np.float64).reshape(-1, 2) * (WIDTH, HEIGHT)
    return int(values[0]), xy.ravel().tolist()


def test_segment_labels_carry_every_shape(seeded: tuple[Session, int, Path]) -> None:
    session, project_id, tmp = seeded
    report = export_yolo(session, project_id=project_id, out_dir=tmp / "yolo", images_root=tmp)
    assert report.images == report.label_files == report.copied_images == len(SHAPES) + 1
    assert report.instances == len(SHAPES) + 1 and report.box_only == 1
    assert report.traced_from_mask == 2  # holes and horse are stored as RLE
    assert (tmp / "yolo" / "labels" / "empty.txt").read_text() == ""
    for name, make in SHAPES.items():
        lines = (tmp / "yolo" / "labels" / f"{name}.txt").read_text().splitlines()
        assert len(lines) == (2 if name == "person" else 1)
        cls, polygon = _polygon(lines[0])
        assert cls == (0 if name.startswith(("line", "pixel", "square")) else 1)
        mask = make()
        got = mask_from_polygons([polygon], HEIGHT, WIDTH)  # even-odd fill, pixel centres
        assert (got & mask).sum() / (got | mask).sum() >= 0.98, name


def test_holes_stay_empty_under_ultralytics_fill(seeded: tuple[Session, int, Path]) -> None:
    session, project_id, tmp = seeded
    export_yolo(session, project_id=project_id, out_dir=tmp / "yolo")
    _cls, polygon = _polygon((tmp / "yolo" / "labels" / "holes.txt").read_text())
    filled = np.zeros((HEIGHT, WIDTH), np.uint8)
    cv2.fillPoly(
        filled, [np.round(np.reshape(polygon, (-1, 2))).astype(np.int32)], 1
    )  # ultralytics' polygon2mask
    assert filled[240, 320] == 0 and filled[122, 302] == 0  # centres of the two holes
    assert filled[240, 200] == 1  # the ring's body


def test_ultralytics_loads_the_dataset(seeded: tuple[Session, int, Path]) -> None:
    from tools.backends.torchvision_compat import ensure_torchvision

    ensure_torchvision()
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    session, project_id, tmp = seeded
    report = export_yolo(session, project_id=project_id, out_dir=tmp / "yolo", images_root=tmp)
    data = check_det_dataset(report.data_yaml, autodownload=False)
    assert data["names"] == {0: "thin", 1: "thing"}
    dataset = YOLODataset(img_path=data["train"], data=data, task="segment", augment=False, imgsz=640)
    assert len(dataset.labels) == len(SHAPES) + 1
    assert sum(len(label["cls"]) for label in dataset.labels) == len(SHAPES) + 1
    assert all(len(label["segments"]) == len(label["cls"]) for label in dataset.labels)


def test_detect_task_writes_boxes(seeded: tuple[Session, int, Path]) -> None:
    session, project_id, tmp = seeded
    export_yolo(session, project_id=project_id, out_dir=tmp / "det", task="detect")
    (line,) = (tmp / "det" / "labels" / "square5.txt").read_text().splitlines()
    cls, cx, cy, w, h = line.split()
    assert cls == "0"
    assert [float(v) for v in (cx, cy, w, h)] == pytest.approx(
        [402.5 / 640, 302.5 / 480, 5 / 640, 5 / 480], abs=1e-6
    )
    assert "Put the images under images/" in (tmp / "det" / "data.yaml").read_text()


def test_same_stem_gets_a_unique_label_name(tmp_path: Path) -> None:
    from store.yolo_export import unique_stems

    stems = unique_stems([(1, "a.jpg"), (2, "a.png"), (3, "sub/a.jpg")])
    assert [str(s) for s in stems.values()] == ["a", "a-2", "sub/a"]


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"task": "pose"}, "task"), ({"project_id": 999}, "no project")]
)
def test_bad_arguments_raise(seeded: tuple[Session, int, Path], kwargs: dict, match: str) -> None:
    session, project_id, tmp = seeded
    with pytest.raises(ValueError, match=match):
        export_yolo(session, **{"project_id": project_id, **kwargs}, out_dir=tmp / "x")
