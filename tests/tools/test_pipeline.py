"""label_image on real photos in a real store, with fake backends: provenance, scores, one
set_image per image, and the caller's transaction."""

from __future__ import annotations

import math

import pytest
from sqlmodel import select

from ops.caller import Caller
from ops.unit import within
from store.db import new_session
from store.models import Annotation, AnnotationEvent, Category
from tools.pipeline import combine, label_image, resolve_image
from tools.registry import ToolError

TESTER = Caller("tester", None, True, via="job")


def _label(store, fakes, name="bus.jpg", labels=("person", "bus", "tie"), threshold=0.3, job_id=7):
    with new_session(store.engine) as session:
        image = resolve_image(session, project_id=store.project_id, ref=name)
        with within(session, TESTER, store.project_id) as unit:
            out = label_image(
                unit,
                backends=fakes,
                home=store.home,
                image=image,
                labels=list(labels),
                threshold=threshold,
                job_id=job_id,
            )
        session.commit()
    return out


def test_writes_proposals_with_provenance(store, fakes) -> None:
    out = _label(store, fakes)
    assert [p.label for p in out.proposals] == ["person", "person", "bus", "tie"]  # 0.2 box under threshold
    with new_session(store.engine) as session:
        anns = session.exec(select(Annotation).order_by(Annotation.id)).all()
        cats = {c.id: c.name for c in session.exec(select(Category)).all()}
        events = session.exec(select(AnnotationEvent)).all()
    assert len(anns) == 4 and len(events) == 4
    first = anns[0]
    assert cats[first.category_id] == "person"
    assert (first.status, first.tool, first.prompt, first.threshold, first.job_id, first.author) == (
        "proposed",
        "auto_label",
        "person",
        0.3,
        7,
        "tester",
    )
    assert first.model == "fake-detector+fake-segmenter"  # the verifier cannot judge "person"
    assert first.score == pytest.approx(0.9)
    bus = anns[2]
    assert bus.model == "fake-detector+fake-segmenter+fake-verifier"
    assert bus.score == pytest.approx(math.sqrt(0.95 * 0.8), abs=1e-4)
    assert first.mask is not None and first.segmentation is not None
    # the ellipse inside box (50, 400, 245, 900): bbox from the mask, area about pi/4 of the box
    x, y, w, h = first.bbox
    assert (x, y) == pytest.approx((50, 400), abs=2) and (w, h) == pytest.approx((195, 500), abs=3)
    assert first.area == pytest.approx(math.pi / 4 * 195 * 500, rel=0.03)
    assert fakes.segmenter.set_image_calls == [store.images["bus.jpg"]]  # once for four boxes
    assert set(out.timings) == {"decode", "detect", "segment", "verify", "write"}


def test_nothing_found_writes_nothing_and_skips_segmenter(store, fakes) -> None:
    out = _label(store, fakes, labels=("dog",))
    assert out.proposals == [] and fakes.segmenter.set_image_calls == []
    with new_session(store.engine) as session:
        assert session.exec(select(Annotation)).all() == []
        assert session.exec(select(Category)).all() == []  # no empty categories left behind


def test_uncommitted_work_rolls_back(store, fakes) -> None:
    with new_session(store.engine) as session:
        image = resolve_image(session, project_id=store.project_id, ref="zidane.jpg")
        with within(session, TESTER, store.project_id) as unit:
            label_image(unit, backends=fakes, home=store.home, image=image, labels=["tie"], threshold=0.3)
        session.rollback()
    with new_session(store.engine) as session:
        assert session.exec(select(Annotation)).all() == []


@pytest.mark.parametrize(
    ("ref", "expected"),
    [("bus.jpg", "bus.jpg"), ("zidane.jpg", "zidane.jpg"), (" coffee.png ", "coffee.png")],
)
def test_resolve_by_name(store, ref, expected) -> None:
    with new_session(store.engine) as session:
        assert resolve_image(session, project_id=store.project_id, ref=ref).file_name == expected


def test_resolve_by_id(store) -> None:
    with new_session(store.engine) as session:
        image_id = store.images["rocket.jpg"]
        assert resolve_image(session, project_id=store.project_id, ref=image_id).id == image_id
        assert resolve_image(session, project_id=store.project_id, ref=str(image_id)).id == image_id


@pytest.mark.parametrize(
    ("ref", "hint"), [("bus.png", "bus.jpg"), ("zidan.jpg", "zidane.jpg"), (99999, "6 images")]
)
def test_unknown_image_lists_near_matches(store, ref, hint) -> None:
    with new_session(store.engine) as session, pytest.raises(ToolError, match=hint):
        resolve_image(session, project_id=store.project_id, ref=ref)


def test_image_of_another_project_is_not_found(store, tmp_path, photos) -> None:
    from tests.tools.conftest import ingest_store, make_photo_dir

    other = ingest_store(store.home, make_photo_dir(tmp_path / "o", photos, n_extra=0), project="other")
    with new_session(store.engine) as session, pytest.raises(ToolError):
        resolve_image(session, project_id=store.project_id, ref=other.images["bus.jpg"])


@pytest.mark.parametrize(("det", "ver", "expected"), [(0.9, None, 0.9), (0.64, 1.0, 0.8), (0.5, 0.0, 0.0)])
def test_combine(det, ver, expected) -> None:
    assert combine(det, ver) == pytest.approx(expected)
