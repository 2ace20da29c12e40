"""segment: box and point prompts write one proposal; bad prompts are the model's to fix."""

from __future__ import annotations

import numpy as np
import pytest
from sqlmodel import select

from store.db import new_session
from store.models import Annotation, Category
from tests.tools.conftest import FakeSegmenter
from tools.catalog import vision_tools
from tools.registry import ToolError

SEGMENT = vision_tools().get("segment")


def test_box_prompt_writes_one_proposal(store, fakes) -> None:
    result = SEGMENT(store.ctx(fakes), {"image": "bus.jpg", "label": "bus", "box": [20, 230, 800, 720]})
    with new_session(store.engine) as session:
        ann = session.exec(select(Annotation)).one()
        category = session.get(Category, ann.category_id)
    assert result.annotation_id == ann.id and category.name == "bus"
    assert (ann.tool, ann.model, ann.prompt, ann.status, ann.author) == (
        "segment",
        "fake-segmenter",
        "bus",
        "proposed",
        "tester",
    )
    assert result.box == pytest.approx([20, 230, 800, 720], abs=2)
    assert result.text().startswith(f"saved #{ann.id} bus on image {store.images['bus.jpg']}: box [")


def test_points_prompt_and_cached_image_key(store, fakes) -> None:
    ctx = store.ctx(fakes)
    first = SEGMENT(ctx, {"image": "zidane.jpg", "label": "face", "points": [[560, 300]]})
    second = SEGMENT(
        ctx,
        {"image": "zidane.jpg", "label": "face", "points": [[960, 200], [100, 100]], "point_labels": [1, 0]},
    )
    assert first.area == pytest.approx(3.14159 * 400, rel=0.05)
    assert first.box == pytest.approx([540, 280, 581, 321], abs=2) and second.box[0] == pytest.approx(
        940, abs=2
    )
    # the segmenter is handed the image id, so its embedding cache can serve the second prompt
    assert fakes.segmenter.set_image_calls == [store.images["zidane.jpg"]] * 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"image": "bus.jpg", "label": "bus"}, "give a box or points"),
        ({"image": "bus.jpg", "label": "bus", "box": [10, 10, 5, 50]}, "x2 > x1"),
        ({"image": "bus.jpg", "label": "bus", "box": [10, 10, 5000, 50]}, "outside image"),
        ({"image": "bus.jpg", "label": "bus", "points": [[1, 2, 3]]}, r"each point must be \[x, y\]"),
        (
            {"image": "bus.jpg", "label": "bus", "points": [[1, 2]], "point_labels": [1, 0]},
            "one value per point",
        ),
        ({"image": "nope.jpg", "label": "bus", "points": [[1, 2]]}, "no image 'nope.jpg'"),
    ],
)
def test_bad_prompts(store, fakes, args, message) -> None:
    with pytest.raises(ToolError, match=message):
        SEGMENT(store.ctx(fakes), args)
    with new_session(store.engine) as session:
        assert session.exec(select(Annotation)).all() == []


def test_segmenter_without_confidence_saves_no_score(store, fakes) -> None:
    fakes.segmenter.segment = lambda **kw: (
        FakeSegmenter.segment(fakes.segmenter, **kw)[0],
        np.array([np.nan]),
    )
    result = SEGMENT(store.ctx(fakes), {"image": "bus.jpg", "label": "bus", "box": [20, 230, 800, 720]})
    with new_session(store.engine) as session:
        assert session.exec(select(Annotation)).one().score is None
    assert result.score is None and "score" not in result.text()


def test_on_a_video_frame_the_object_starts_or_joins_a_track(tmp_path, fakes) -> None:
    from ops.caller import local_caller
    from ops.unit import Env
    from store.db import open_engine
    from store.models import Image
    from tests.ops.video_clip import add_squares
    from tools.registry import ToolContext

    home = tmp_path / "home"
    engine = open_engine(home / "labelwright.db")
    clip = add_squares(Env(engine, home), tmp_path)
    ctx = ToolContext(
        engine=engine, project_id=clip.project_id, home=home, models_dir=tmp_path, caller=local_caller(),
        backends_factory=lambda: fakes,
    )  # fmt: skip
    with new_session(engine) as session:
        rows = session.exec(select(Image.frame_index, Image.id).where(Image.video_id == clip.video_id))
        frames = dict(rows.all())
    box = [150, 60, 190, 100]  # background between the squares
    started = SEGMENT(ctx, {"image": frames[3], "label": "cone", "box": box, "track": "new"})
    assert started.track_id not in (None, clip.a, clip.b, clip.c)
    assert started.text().endswith(f"on track {started.track_id}")
    joined = SEGMENT(ctx, {"image": frames[4], "label": "cone", "box": box, "track": started.track_id})
    assert joined.track_id == started.track_id
    with pytest.raises(ToolError, match="one annotation per frame"):
        SEGMENT(ctx, {"image": frames[4], "label": "cone", "box": box, "track": started.track_id})
    with pytest.raises(ToolError, match="track"):
        SEGMENT(ctx, {"image": frames[4], "label": "cone", "box": box, "track": "next"})
    with new_session(engine) as session:
        on = session.exec(select(Annotation.id).where(Annotation.track_id == started.track_id)).all()
    assert sorted(on) == sorted([started.annotation_id, joined.annotation_id])
    engine.dispose()


def test_a_click_still_segments_when_the_detector_files_are_missing(store) -> None:  # type: ignore[no-untyped-def]
    """The lite segmenter turns a click into the detected object's box; with the detector's file
    missing the click goes to the segmenter's own point search (as the API fuzz found: it was a 500)."""
    from pathlib import Path

    from tools import segment
    from tools.backends.lite_segmenter import LiteSegmenter
    from tools.models.resolve import ModelMissing

    class NoDetectorFiles:
        segmenter = LiteSegmenter(None)  # GrabCut: no weights

        @property
        def detector(self):  # type: ignore[no-untyped-def]
            raise ModelMissing(
                "model 'nanodet' does not exist",
                model_id="nanodet",
                expected=Path("lite/nanodet.onnx"),
                command="labelwright models fetch nanodet",
            )

    with new_session(store.engine) as session:
        from store.models import Image

        image = session.get(Image, store.images["bus.jpg"])
    prompt = segment.Prompt(points=[[600.0, 400.0]])  # on the bus side: GrabCut finds a region
    proposal = segment.compute_mask(NoDetectorFiles(), Path(store.home), image, prompt)
    assert proposal.rle["size"] == [image.height, image.width] and proposal.model == "lite-grabcut"
