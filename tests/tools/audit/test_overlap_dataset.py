from __future__ import annotations

from tools.audit.dataset import check_dataset
from tools.audit.findings import AuditAnnotation, box_iou
from tools.audit.overlap import check_overlaps


def ann(
    i: int, category: str, bbox: list[float], score: float | None = None, image: int = 1
) -> AuditAnnotation:
    return AuditAnnotation(
        id=i,
        image_id=image,
        image_name=f"{image}.jpg",
        image_size=(640, 480),
        category=category,
        bbox=bbox,
        score=score,
    )


def test_box_iou() -> None:
    assert box_iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert box_iou([0, 0, 10, 10], [20, 20, 5, 5]) == 0.0
    assert abs(box_iou([0, 0, 10, 10], [5, 0, 10, 10]) - 50 / 150) < 1e-9


def test_duplicate_flags_the_weaker_copy() -> None:
    found = check_overlaps([ann(1, "car", [10, 10, 100, 50], 0.9), ann(2, "car", [12, 11, 99, 50], 0.4)])
    assert [(f.kind, f.annotation_id, f.evidence["other_id"]) for f in found] == [("duplicate", 2, 1)]


def test_conflict_between_classes_and_no_false_alarm_for_neighbours() -> None:
    found = check_overlaps(
        [
            ann(1, "car", [10, 10, 100, 50], 0.9),
            ann(2, "truck", [11, 10, 100, 50], 0.5),
            ann(3, "person", [300, 10, 40, 100], 0.9),
            ann(4, "person", [345, 10, 40, 100], 0.9),
        ]
    )
    assert [(f.kind, f.annotation_id) for f in found] == [("class_conflict", 2)]


def test_same_boxes_in_different_images_are_not_duplicates() -> None:
    assert (
        check_overlaps([ann(1, "car", [0, 0, 50, 50], image=1), ann(2, "car", [0, 0, 50, 50], image=2)]) == []
    )


def test_dataset_level_findings() -> None:
    anns = [ann(i, "person", [0, 0, 10, 10], 0.2) for i in range(40)] + [ann(99, "car", [0, 0, 10, 10], 0.9)]
    found = check_dataset(anns, images={1: "1.jpg", 2: "2.jpg"}, categories=["person", "car", "tie"])
    by_kind = {f.kind: f for f in found}
    assert set(by_kind) == {"empty_class", "unlabelled_image", "class_imbalance", "low_confidence_class"}
    assert by_kind["empty_class"].evidence["class"] == "tie"
    assert by_kind["unlabelled_image"].image_name == "2.jpg"
    assert by_kind["class_imbalance"].evidence["ratio"] == 40.0
    assert by_kind["low_confidence_class"].evidence["key"] == "person"
