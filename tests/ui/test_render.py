from __future__ import annotations

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from ui.render import Overlay, class_color, render, tag_of, track_color


def test_class_colors_are_stable_and_distinct() -> None:
    assert class_color("person") == class_color("person")
    assert len({class_color(n) for n in ["person", "bus", "tie", "car", "dog"]}) == 5


def test_render_tints_mask_and_draws_box_on_real_photo(photos) -> None:  # type: ignore[no-untyped-def]
    image = Image.open(photos["bus.jpg"]).convert("RGB")
    w, h = image.size
    mask = np.zeros((h, w), np.uint8)
    mask[100:300, 50:250] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    ov = Overlay(
        id=7,
        label="bus",
        bbox=[50, 100, 200, 200],
        mask={"size": rle["size"], "counts": rle["counts"].decode()},
    )
    out = np.asarray(render(image, [ov]), dtype=np.int16)
    src = np.asarray(image, dtype=np.int16)
    assert out.shape == src.shape
    inside = np.abs(out[150:250, 100:200] - src[150:250, 100:200]).mean()
    outside = np.abs(out[400:600, 400:600] - src[400:600, 400:600]).mean()
    assert inside > 20 and outside == 0
    assert tuple(out[200, 50]) == class_color("bus")  # box outline


def test_track_colours_are_stable_per_id_and_drawn_instead_of_the_class_colour(photos) -> None:  # type: ignore[no-untyped-def]
    assert track_color(3) == track_color(3)
    assert len({track_color(i) for i in range(1, 21)}) == 20
    image = Image.open(photos["bus.jpg"]).convert("RGB")
    tracked = Overlay(id=7, label="person", bbox=[50, 100, 200, 200], track_id=3)
    out = np.asarray(render(image, [tracked]), dtype=np.int16)
    assert tuple(out[200, 50]) == track_color(3) != class_color("person")
    assert tag_of(tracked) == "T3 #7 person"
    assert tag_of(Overlay(id=7, label="bus", bbox=[0, 0, 1, 1])) == "#7 bus"
