"""Review order on a real-photo project with planted wrong proposals: it finds them faster than
random order, uses audit findings, spreads over images, and skips what the person passed over."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ops import review_order
from ops.errors import Invalid
from tests.ops.planted import CALLER, Planted, plant


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory, photos: dict[str, Path]) -> Planted:
    return plant(tmp_path_factory.mktemp("review-order") / "home", photos, n=1200, reviewed=0.1, findings=60)


def test_it_finds_wrong_proposals_faster_than_random_order(planted: Planted) -> None:
    order = review_order.queue(planted.env, CALLER, planted.project_id, limit=1000)
    assert {i.annotation_id for i in order} <= set(planted.held_out)
    assert len(order) == min(1000, len(planted.held_out))
    wrong = np.array([not planted.right[i.annotation_id] for i in order])
    base = 1 - np.mean([planted.right[i] for i in planted.held_out])
    for k in (50, 100, 200):
        assert wrong[:k].mean() > base + 0.25, (k, wrong[:k].mean(), base)  # random finds base * k


def test_findings_raise_a_proposal(planted: Planted) -> None:
    order = review_order.queue(planted.env, CALLER, planted.project_id, limit=1000)
    flagged = [n for n, i in enumerate(order) if i.finding_ids]
    plain = [n for n, i in enumerate(order) if not i.finding_ids]
    assert np.median(flagged) < np.median(plain)
    first = order[flagged[0]]
    assert any("label_mismatch" in r for r in first.reasons) and first.p_wrong > 0


def test_one_image_does_not_fill_the_queue(planted: Planted) -> None:
    top = review_order.queue(planted.env, CALLER, planted.project_id, limit=12)
    assert len({i.image_id for i in top}) >= 4
    images = review_order.queue(planted.env, CALLER, planted.project_id, by="image", limit=50)
    assert len({i.image_id for i in images}) == len(images) == 6 and all(i.proposals > 1 for i in images)


def test_next_skips_what_was_passed_over(planted: Planted) -> None:
    first, second = review_order.queue(planted.env, CALLER, planted.project_id, limit=2)
    (after_skip,) = review_order.queue(
        planted.env, CALLER, planted.project_id, limit=1, exclude=[first.annotation_id]
    )
    assert after_skip.annotation_id == second.annotation_id


def test_boundary_focus_puts_coin_tosses_first(planted: Planted) -> None:
    top = review_order.queue(planted.env, CALLER, planted.project_id, focus="boundary", limit=20)
    assert all(0.3 <= i.p_wrong <= 0.7 for i in top)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"focus": "fun"}, "focus must be"), ({"by": "class"}, "by must be"), ({"limit": 0}, "limit must be"),
     ({"labels": ["bicycle"]}, "no class 'bicycle'")],
)  # fmt: skip
def test_bad_input_is_refused(planted: Planted, kwargs: dict, message: str) -> None:
    with pytest.raises(Exception, match=message) as refused:
        review_order.queue(planted.env, CALLER, planted.project_id, **kwargs)
    assert isinstance(refused.value, Invalid) or "no class" in message
