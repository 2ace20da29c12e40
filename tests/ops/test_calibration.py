"""Calibration on a real-photo project with planted review decisions: the thresholds it picks hold
on the proposals nobody reviewed, and applying them is one undoable change."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ops import annotations, calibration, history
from ops.bulk import DryRun, Edited
from ops.errors import Invalid
from tests.ops.planted import CALLER, Planted, plant


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory, photos: dict[str, Path]) -> Planted:
    return plant(tmp_path_factory.mktemp("calibration") / "home", photos, n=2000, reviewed=0.5)


@pytest.mark.parametrize("target", [0.8, 0.85, 0.9])
def test_held_out_precision_lies_in_the_reported_interval(planted: Planted, target: float) -> None:
    report = calibration.calibrate(planted.env, CALLER, planted.project_id, precision=target)
    (car,) = report.classes
    assert car.label == "car" and car.reviewed == len(planted.reviewed)
    assert car.accept_above is not None and car.low is not None and car.high is not None
    assert car.low >= target, "the threshold's lower bound must meet the target"
    above = [i for i in planted.held_out if planted.score[i] >= car.accept_above]
    measured = sum(planted.right[i] for i in above) / len(above)
    assert car.low <= measured <= car.high, (measured, car)
    assert car.to_accept == len(above)
    # the planted truth P(right | s) = 0.3 + 0.7 s: below the reject threshold few are right
    if car.reject_below is not None:
        below = [i for i in planted.held_out if planted.score[i] < car.reject_below]
        assert sum(planted.right[i] for i in below) / max(len(below), 1) <= 1 - target + 0.1


def test_a_higher_target_needs_a_higher_threshold(planted: Planted) -> None:
    lax, strict = (
        calibration.calibrate(planted.env, CALLER, planted.project_id, precision=p).classes[0]
        for p in (0.8, 0.9)
    )
    assert lax.accept_above is not None and strict.accept_above is not None
    assert strict.accept_above > lax.accept_above and strict.to_accept < lax.to_accept
    assert lax.curve and all(0 <= p.low <= p.precision <= p.high <= 1 for p in lax.curve)


def test_an_unreachable_target_proposes_no_threshold(planted: Planted) -> None:
    # P(right | s) = 0.3 + 0.7 s: a 0.97 precision needs s > 0.95, too few reviewed up there to show it
    (car,) = calibration.calibrate(planted.env, CALLER, planted.project_id, precision=0.97).classes
    assert car.accept_above is None and car.to_accept == 0 and "no threshold reaches" in car.note


def test_small_samples_say_so(tmp_path: Path, photos: dict[str, Path]) -> None:
    few = plant(tmp_path / "home", photos, n=60, reviewed=0.25)
    (car,) = calibration.calibrate(few.env, CALLER, few.project_id).classes
    assert car.accept_above is None and "too few reviewed" in car.note
    assert car.to_review == len(few.held_out)
    with pytest.raises(Invalid, match="nothing to apply"):
        calibration.apply(few.env, CALLER, few.project_id)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"precision": 1.0}, "precision must be in"), ({"confidence": 0.2}, "confidence must be in"),
     ({"labels": ["bicycle"]}, "no class 'bicycle'")],
)  # fmt: skip
def test_bad_input_is_refused(planted: Planted, kwargs: dict, message: str) -> None:
    with pytest.raises(Exception, match=message):
        calibration.calibrate(planted.env, CALLER, planted.project_id, **kwargs)


def test_apply_is_one_undoable_change(tmp_path: Path, photos: dict[str, Path]) -> None:
    p = plant(tmp_path / "home", photos, n=1000, reviewed=0.5, seed=3)
    before = annotations.count(p.env, CALLER, p.project_id, by="status")
    dry = calibration.apply(p.env, CALLER, p.project_id, precision=0.8)
    assert isinstance(dry, DryRun) and "auto-accept" in dry.summary
    assert annotations.count(p.env, CALLER, p.project_id, by="status") == before, "a dry run writes nothing"
    done = calibration.apply(p.env, CALLER, p.project_id, precision=0.8, confirm=dry.token)
    assert isinstance(done, Edited) and done.changed == dry.annotations
    after = annotations.count(p.env, CALLER, p.project_id, by="status")
    assert after["proposed"] == before["proposed"] - dry.annotations
    undone = history.step(p.env, CALLER, p.project_id, "undo")
    assert undone is not None and undone.affected == dry.annotations
    assert annotations.count(p.env, CALLER, p.project_id, by="status") == before
    with pytest.raises(Exception, match="changed since the preview"):
        calibration.apply(p.env, CALLER, p.project_id, precision=0.8, confirm="0" * 16)


def test_the_interval_covers_what_is_measured_afterwards_at_about_its_confidence() -> None:
    """Over 300 planted draws (no store: the statistics alone), the precision measured on the
    proposals a threshold auto-accepts lies inside the reported 95% interval about 95% of the time."""
    hits = tries = 0
    for seed in range(300):
        rng = np.random.default_rng(seed)
        scores = rng.uniform(0.05, 0.99, 2000).round(4)
        right = rng.random(2000) < 0.3 + 0.7 * scores
        seen = rng.random(2000) < 0.5
        curve = calibration.Curve(scores[seen], right[seen], calibration._z(0.95), scores[~seen])
        chosen = curve.accept_threshold(0.85)
        if chosen is None:
            continue
        low, high = (float(b[chosen]) for b in curve.bounds())
        accepted = ~seen & (scores >= curve.above()[0][chosen])
        tries += 1
        hits += low <= right[accepted].mean() <= high
    assert tries > 250 and 0.9 <= hits / tries <= 0.99, (hits, tries)


def test_proposals_fixed_by_hand_count_as_wrong_and_a_rename_is_no_fix(
    tmp_path: Path, photos: dict[str, Path]
) -> None:
    """Five accepted proposals fixed by hand (three boxes redrawn, two relabelled to truck) move from
    right to wrong for 'car', as proposed; renaming the class afterwards changes nothing."""
    from ops import bulk

    p = plant(tmp_path / "home", photos, n=200, reviewed=0.5, seed=5)
    (car,) = calibration.calibrate(p.env, CALLER, p.project_id).classes
    assert car.fixed == 0
    accepted = [i for i in p.reviewed if p.right[i]][:5]
    for i in accepted[:3]:
        row = annotations.get(p.env, CALLER, p.project_id, i)
        x, y, w, h = row.bbox
        annotations.update(p.env, CALLER, p.project_id, i, version=row.version, bbox=[x + 5, y, w, h])
    annotations.relabel(p.env, CALLER, p.project_id, ids=accepted[3:], label="truck")
    (fixed,) = calibration.calibrate(p.env, CALLER, p.project_id, labels=["car"]).classes
    assert (fixed.fixed, fixed.reviewed, fixed.accepted) == (5, car.reviewed, car.accepted - 5)
    assert fixed.precision is None or fixed.precision <= (car.precision or 1)
    groups = {c.label for c in calibration.calibrate(p.env, CALLER, p.project_id).classes}
    assert groups == {"car"}, "a relabelled proposal is calibrated as the class it was proposed as"
    # a rename moves every annotation but fixes none of them; the redrawn ones follow it, the two
    # relabelled away from 'car' cannot (that class is gone), so they drop out
    dry = bulk.edit(p.env, CALLER, p.project_id, "rename_class", {"old": "car", "new": "auto"})
    if isinstance(dry, DryRun):
        bulk.edit(
            p.env, CALLER, p.project_id, "rename_class", {"old": "car", "new": "auto"}, confirm=dry.token
        )
    (auto,) = [c for c in calibration.calibrate(p.env, CALLER, p.project_id).classes if c.label == "auto"]
    assert (auto.fixed, auto.accepted) == (3, fixed.accepted)
    # undoing a fix makes the proposal right again
    history.step(p.env, CALLER, p.project_id, "undo")  # the rename
    history.step(p.env, CALLER, p.project_id, "undo")  # the relabel
    (back,) = calibration.calibrate(p.env, CALLER, p.project_id, labels=["car"]).classes
    assert (back.fixed, back.accepted) == (3, car.accepted - 3)
