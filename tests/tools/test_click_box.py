"""click_box: from a click to the box of the object under it (flood region, else a growing window)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tools.click_truth import COUNTS, PHOTOS, load_rgb, truths
from tools.backends.click_box import bbox_of, box_from_click, click_to_box, flood_box, part_at, square_around


def _box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area


@pytest.mark.parametrize(
    ("point", "side", "expected"),
    [
        ((50, 50), 20, (40, 40, 60, 60)),
        ((2, 3), 20, (0, 0, 20, 20)),  # shifted inside, not cut
        ((99, 79), 20, (80, 60, 100, 80)),
        ((50, 40), 500, (0, 0, 100, 80)),  # larger than the image: the image
    ],
)
def test_square_around_stays_inside_the_image(
    point: tuple[int, int], side: float, expected: tuple[int, int, int, int]
) -> None:
    assert square_around(np.array(point), side, 100, 80) == expected


def test_part_at_takes_the_part_under_or_next_to_the_point() -> None:
    mask = np.zeros((40, 40), bool)
    mask[5:15, 5:15] = True
    mask[20:30, 20:30] = True
    under = part_at(mask, np.array([25, 25]))
    assert under is not None and bbox_of(under) == (20, 20, 30, 30)
    near = part_at(mask, np.array([16, 16]))  # 2 px off the first square
    assert near is not None and bbox_of(near) == (5, 5, 15, 15)
    assert part_at(mask, np.array([35, 5])) is None


def _object_image() -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A plain dark bar (300x60 px) on a noisy light background."""
    rng = np.random.default_rng(0)
    image = (rng.normal(0, 6, (400, 600, 3)) + 200).clip(0, 255).astype(np.uint8)
    image[170:230, 150:450] = 40
    return image, (150, 170, 450, 230)


def test_flood_box_finds_a_plain_object_and_refuses_regions_of_the_wrong_size() -> None:
    image, truth = _object_image()
    box = flood_box(image, np.array([300, 200]), margin=0.0)
    assert box is not None and _box_iou(box, truth) > 0.95
    assert flood_box(image, np.array([300, 200]), max_area=0.05) is None  # the bar is 7.5 % of the image
    assert flood_box(image, np.array([20, 20])) is None  # the background is more than half the image


def test_growing_window_reaches_the_whole_object() -> None:
    """A segmenter that only sees what lies in its window still leads the search to the full bar."""
    _, truth = _object_image()
    obj = np.zeros((400, 600), bool)
    obj[truth[1] : truth[3], truth[0] : truth[2]] = True
    seen: list[tuple[int, int, int, int]] = []

    def window_mask(window: tuple[int, int, int, int]) -> np.ndarray:
        seen.append(window)
        inside = np.zeros_like(obj)
        inside[window[1] : window[3], window[0] : window[2]] = True
        return obj & inside

    box = box_from_click(np.array([300, 200]), (400, 600), window_mask, start=(260, 160, 340, 240))
    assert box == truth
    assert len(seen) >= 2 and seen[0] == (260, 160, 340, 240)  # it started small and grew


def test_growing_window_finds_nothing_where_there_is_nothing() -> None:
    def empty(window: tuple[int, int, int, int]) -> np.ndarray:
        return np.zeros((100, 100), bool)

    assert box_from_click(np.array([50, 50]), (100, 100), empty, start=(35, 35, 65, 65)) is None


@pytest.mark.parametrize("name", PHOTOS)
def test_flood_box_frames_the_plain_objects_of_the_truth_set(name: str) -> None:
    rgb = load_rgb(name)
    objects = truths(name, rgb)
    assert len(objects) == COUNTS[name]  # the set as it was checked by eye
    for truth in objects:
        assert truth.mask[truth.click[1], truth.click[0]]
        box = flood_box(rgb, np.array(truth.click))  # shading keeps some rims out; the margin is for them
        assert box is not None and _box_iou(box, truth.box) > 0.75, (truth.click, box, truth.box)


def test_a_click_on_one_colour_of_an_object_grows_to_all_of_it() -> None:
    """The flood region is the dark half only; the search grows from it to the whole two-colour bar."""
    image, truth = _object_image()
    image[170:230, 300:450] = [200, 30, 30]
    obj = np.zeros((400, 600), bool)
    obj[truth[1] : truth[3], truth[0] : truth[2]] = True

    def window_mask(window: tuple[int, int, int, int]) -> np.ndarray:
        inside = np.zeros_like(obj)
        inside[window[1] : window[3], window[0] : window[2]] = True
        return obj & inside

    flood = flood_box(image, np.array([200, 200]))
    assert flood is not None and flood[2] < 320  # the dark half
    box = click_to_box(image, np.array([200, 200]), window_mask, start_side=0.3)
    assert box is not None and box[2] >= truth[2]  # reaches the red half's far end
    assert _box_iou(box, truth) > 0.85  # plus the flood box's margin on the dark side
