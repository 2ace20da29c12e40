"""The closed vocabulary: user words -> COCO names -> ImageNet classes (pure logic, no weights)."""

from __future__ import annotations

import pytest

from tools.backends.vocab import COCO80, IMAGENET_ROOTS, UnknownLabel, imagenet_classes, normalize, to_coco


def test_coco80_has_eighty_unique_names() -> None:
    assert len(COCO80) == 80 and len(set(COCO80)) == 80


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("person", ("person",)),
        ("pedestrian", ("person",)),
        ("Pedestrians", ("person",)),
        ("people", ("person",)),
        ("  Woman ", ("person",)),
        ("children", ("person",)),
        ("vehicle", ("car", "truck", "bus", "motorcycle")),
        ("vehicles", ("car", "truck", "bus", "motorcycle")),
        ("puppy", ("dog",)),
        ("puppies", ("dog",)),
        ("Dogs", ("dog",)),
        ("bike", ("bicycle",)),
        ("motorbike", ("motorcycle",)),
        ("TV", ("tv",)),
        ("television", ("tv",)),
        ("sofa", ("couch",)),
        ("couches", ("couch",)),
        ("cellphone", ("cell phone",)),
        ("phones", ("cell phone",)),
        ("Traffic_Lights", ("traffic light",)),
        ("traffic-light", ("traffic light",)),
        ("buses", ("bus",)),
        ("knives", ("knife",)),
        ("skis", ("skis",)),
        ("wine glasses", ("wine glass",)),
        ("hot dogs", ("hot dog",)),
        ("a dog", ("dog",)),
        ("The Buses", ("bus",)),
    ],
)
def test_to_coco_maps_synonyms_plurals_and_case(label: str, expected: tuple[str, ...]) -> None:
    assert to_coco(label) == expected


@pytest.mark.parametrize("label", ["unicorn", "", "   ", "lamp post", "persons of interest"])
def test_unknown_label_is_refused_with_the_list_of_what_can_be_detected(label: str) -> None:
    with pytest.raises(UnknownLabel) as err:
        to_coco(label)
    assert isinstance(err.value, ValueError)
    assert repr(label) in str(err.value)
    assert "toothbrush" in str(err.value) and "pedestrian" in str(err.value)


def test_normalize_collapses_separators() -> None:
    assert normalize(" Traffic_Light \t") == "traffic light"
    assert normalize("hair-drier") == "hair drier"
    assert normalize("an apple") == "apple" and normalize("the") == "the"


def test_every_synonym_and_root_points_at_coco_names() -> None:
    from tools.backends.vocab import SYNONYMS

    assert {name for names in SYNONYMS.values() for name in names} <= set(COCO80)
    assert set(IMAGENET_ROOTS) <= set(COCO80)


def test_every_hand_checked_root_covers_imagenet_classes() -> None:
    for name in IMAGENET_ROOTS:
        assert imagenet_classes(name), f"{name} covers no ImageNet class"


@pytest.mark.parametrize(
    ("label", "count"),
    [("dog", 118), ("puppy", 118), ("bus", 3), ("tie", 3), ("cat", 5), ("bicycle", 2), ("bird", 59)],
)
def test_imagenet_classes_follow_the_wordnet_hierarchy(label: str, count: int) -> None:
    assert len(imagenet_classes(label)) == count


def test_known_imagenet_indices() -> None:
    assert {779, 874, 654} == imagenet_classes("bus")  # school bus, trolleybus, minibus
    assert {906, 457} <= imagenet_classes("tie")  # Windsor tie, bow tie
    assert {817, 468, 511} <= imagenet_classes("car")  # sports car, cab, convertible
    assert 281 in imagenet_classes("cat") and 281 not in imagenet_classes("dog")  # tabby
    assert imagenet_classes("vehicle") >= imagenet_classes("bus") | imagenet_classes("car")


@pytest.mark.parametrize("label", ["person", "pedestrian", "giraffe", "kite", "frisbee", "unicorn"])
def test_labels_without_imagenet_classes_cannot_be_verified(label: str) -> None:
    assert imagenet_classes(label) == frozenset()


def test_sports_ball_excludes_punching_bag_and_truck_excludes_minivan() -> None:
    assert 747 not in imagenet_classes("sports ball")  # punching bag
    assert 656 not in imagenet_classes("truck") and 656 in imagenet_classes("car")  # minivan


def test_words_outside_coco_resolve_through_wordnet_lemmas() -> None:
    assert imagenet_classes("golden retriever") == frozenset({207})
    assert imagenet_classes("feline") > imagenet_classes("cat")
