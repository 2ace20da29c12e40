"""Per-image PNG masks: instance and class maps that decode back to the stored masks."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image as PILImage
from sqlmodel import Session, select

from store.db import new_session, open_engine
from store.mask_png_export import export_masks
from store.masks import rle_from_mask
from store.models import Annotation, AnnotationStatus, Image
from tests.store.shapes import HEIGHT, SHAPES, WIDTH, seed_project


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Session, int, Path]:
    session = new_session(open_engine(tmp_path / "store.db"))
    project_id = seed_project(session, tmp_path / "photos")
    yield session, project_id, tmp_path
    session.close()


def test_maps_decode_to_the_masks(seeded: tuple[Session, int, Path]) -> None:
    session, project_id, tmp = seeded
    report = export_masks(session, project_id=project_id, out_dir=tmp / "png")
    legend = json.loads((tmp / "png" / "legend.json").read_text())
    assert report.images == len(SHAPES) + 1 and report.instances == len(SHAPES)
    assert report.box_only_skipped == legend["box_only_skipped"] == 1
    assert legend["classes"] == [{"value": 1, "name": "thin"}, {"value": 2, "name": "thing"}]
    by_name = {entry["file_name"]: entry for entry in legend["images"]}
    for name, make in SHAPES.items():
        entry = by_name[f"{name}.png"]
        instances = np.asarray(PILImage.open(tmp / "png" / entry["instance_png"]))  # a second reader
        classes = cv2.imread(str(tmp / "png" / entry["class_png"]), cv2.IMREAD_UNCHANGED)
        assert instances.dtype == np.uint16 or PILImage.open(
            tmp / "png" / entry["instance_png"]
        ).mode.startswith("I")
        assert classes.dtype == np.uint8
        mask = make()
        (instance,) = entry["instances"]
        assert np.array_equal(instances == instance["value"], mask)
        assert np.array_equal(classes == instance["class_value"], mask)
        assert instance["area"] == instance["visible_area"] == mask.sum()
    empty = cv2.imread(str(tmp / "png" / by_name["empty.png"]["instance_png"]), cv2.IMREAD_UNCHANGED)
    assert empty.shape == (HEIGHT, WIDTH) and empty.dtype == np.uint16 and not empty.any()


def test_small_objects_are_painted_over_large_ones(seeded: tuple[Session, int, Path]) -> None:
    session, project_id, tmp = seeded
    person = session.exec(select(Image).where(Image.file_name == "person.png")).one()
    big = session.exec(
        select(Annotation).where(Annotation.image_id == person.id, Annotation.score == 0.9)
    ).one()
    small = np.zeros((HEIGHT, WIDTH), bool)
    small[180:200, 300:340] = True  # on the torso
    session.add(
        Annotation(
            project_id=project_id,
            image_id=person.id,
            category_id=big.category_id,
            bbox=[300, 180, 40, 20],
            mask=rle_from_mask(small),
            status=AnnotationStatus.accepted,
        )
    )
    session.commit()
    report = export_masks(session, project_id=project_id, out_dir=tmp / "png", kind="instance")
    assert report.overlapping_pixels == small.sum()
    entry = next(
        e
        for e in json.loads((tmp / "png" / "legend.json").read_text())["images"]
        if e["image_id"] == person.id
    )
    assert "class_png" not in entry
    first, second = entry["instances"]
    instances = cv2.imread(str(tmp / "png" / entry["instance_png"]), cv2.IMREAD_UNCHANGED)
    assert np.all(instances[small] == second["value"])
    assert first["visible_area"] == first["area"] - small.sum()


@pytest.mark.parametrize(("kwargs", "match"), [({"kind": "rgb"}, "kind"), ({"status": []}, "status")])
def test_bad_arguments_raise(seeded: tuple[Session, int, Path], kwargs: dict, match: str) -> None:
    session, project_id, tmp = seeded
    with pytest.raises(ValueError, match=match):
        export_masks(session, project_id=project_id, out_dir=tmp / "x", **kwargs)
    assert not (tmp / "x").exists()
