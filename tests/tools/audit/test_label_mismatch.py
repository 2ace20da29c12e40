"""Label mismatch with a table-driven fake verifier: who is flagged, and who never is."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tools.audit.findings import AuditAnnotation
from tools.audit.label_mismatch import KIND, MismatchThresholds, check_label_mismatch, crop_xywh, judge

NAN = math.nan


def ann(i: int, category: str, bbox: list[float] | None = None, image: int = 1) -> AuditAnnotation:
    return AuditAnnotation(
        id=i,
        image_id=image,
        image_name=f"{image}.jpg",
        image_size=(100, 80),
        category=category,
        bbox=bbox or [10, 10, 20, 20],
    )


class TableVerifier:
    """Scores a crop by its mean red value: a lookup into ``table[red][label]``.

    Labels that appear nowhere in the table are ones it cannot judge: NaN for every crop, as the
    Verifier Protocol says; a crop of another red value scores 0 for the labels it knows.
    """

    model_id = "table"

    def __init__(self, table: dict[int, dict[str, float]]) -> None:
        self.table = table
        self.calls: list[tuple[int, list[str]]] = []

    def score(self, crops: list[np.ndarray], labels: list[str]) -> np.ndarray:
        self.calls.append((len(crops), list(labels)))
        known = {label for row in self.table.values() for label in row}
        rows = [
            [
                self.table.get(int(c[..., 0].mean()), {}).get(label, 0.0 if label in known else NAN)
                for label in labels
            ]
            for c in crops
        ]
        return np.array(rows, dtype=np.float32).reshape(len(crops), len(labels))


@pytest.mark.parametrize(
    ("category", "scores", "expected"),
    [
        ("bus", {"bus": 0.1, "truck": 0.7}, "looks like truck (0.70) rather than bus (0.10)"),
        ("bus", {"bus": 0.5, "truck": 0.6}, None),  # another class wins, but not clearly
        ("bus", {"bus": 0.05, "truck": 0.25}, None),  # clear margin, but the winner itself is weak
        ("cat", {"cat": 0.01, "dog": 0.02}, "the verifier hardly sees a cat here (score 0.01)"),
        ("cat", {"cat": 0.9, "dog": 0.05}, None),
        ("person", {"person": NAN, "dog": 0.99}, None),  # cannot judge the own label: never flagged
        ("cat", {"cat": 0.2, "person": NAN}, None),  # a class it cannot judge never wins
    ],
    ids=["other-wins", "close-call", "weak-winner", "low-own", "fine", "nan-own", "nan-other"],
)
def test_judge(category: str, scores: dict[str, float], expected: str | None) -> None:
    finding = judge(ann(7, category), scores, MismatchThresholds())
    assert (finding.message if finding else None) == expected
    if finding is not None:
        assert (finding.kind, finding.annotation_id, finding.evidence["own"]) == (KIND, 7, scores[category])
        assert 0 <= finding.confidence <= 1 and 0 <= finding.severity <= 1


@pytest.mark.parametrize(
    ("batch", "calls"), [(32, [3]), (2, [2, 1])], ids=["all-images-in-one-call", "two-calls"]
)
def test_crops_are_batched_across_images_with_every_project_class(batch: int, calls: list[int]) -> None:
    image = np.zeros((80, 100, 3), np.uint8)
    image[:40, :, 0] = 10  # top half "looks like a truck", bottom half like a bus
    image[40:, :, 0] = 20
    verifier = TableVerifier({10: {"bus": 0.1, "truck": 0.8}, 20: {"bus": 0.9, "truck": 0.1}})
    anns = [
        ann(1, "bus", [0, 0, 50, 30]),
        ann(2, "bus", [0, 45, 50, 30]),
        ann(3, "truck", [0, 50, 60, 20], 2),
        ann(4, "cat", [0, 0, 50, 30], 2),  # the verifier cannot judge cats: its crop is never scored
    ]
    found = check_label_mismatch(
        anns, load_image=lambda _: image, verifier=verifier, classes=["bus", "truck", "cat"], batch=batch
    )
    assert sorted((f.annotation_id, f.evidence["best_class"]) for f in found) == [(1, "truck"), (3, "bus")]
    # one probe crop finds the labels it can judge, then the three judgeable crops in batches
    assert verifier.calls == [(n, ["bus", "cat", "truck"]) for n in [1, *calls]]


def test_crop_is_clipped_to_the_image() -> None:
    image = np.arange(80 * 100 * 3, dtype=np.uint32).reshape(80, 100, 3)
    assert crop_xywh(image, [90, 70, 50, 50]).shape == (10, 10, 3)
    assert crop_xywh(image, [-5, -5, 10, 10]).shape == (5, 5, 3)
    assert crop_xywh(image, [120, 90, 3, 3]).shape == (1, 1, 3)


def test_a_verifier_that_knows_its_labels_is_not_probed() -> None:
    from tools.audit.label_mismatch import judgeable

    class Knowing(TableVerifier):
        def judgeable(self, labels: list[str]) -> set[str]:
            return {"bus", "truck", "kite"}  # kite: not asked for, so not in the answer

    verifier = Knowing({})
    assert judgeable(verifier, ["bus", "cat", "truck"]) == {"bus", "truck"}
    assert verifier.calls == []  # no forward pass
