"""detect / verify / segment_everything through the registry, as the agent calls them."""

from __future__ import annotations

import pytest
from sqlmodel import select

from store.db import new_session
from store.models import Annotation
from tools.catalog import vision_tools
from tools.registry import ToolError

TOOLS = vision_tools()


def _annotations(store) -> list[Annotation]:
    with new_session(store.engine) as session:
        return list(session.exec(select(Annotation)).all())


def test_catalog_schemas_carry_descriptions_and_ranges() -> None:
    assert TOOLS.names() == ["detect", "segment", "segment_everything", "verify", "count", "auto_label"]
    detect = TOOLS.get("detect").schema()["function"]
    props = detect["parameters"]["properties"]
    assert props["threshold"]["minimum"] == 0.01 and props["threshold"]["maximum"] == 0.99
    assert "file name" in props["image"]["description"]
    assert set(detect["parameters"]["required"]) == {"image", "labels"}
    count = TOOLS.get("count").schema()["function"]["parameters"]["properties"]
    assert count["by"]["enum"] == ["class", "image", "status"]


def test_detect_reports_boxes_and_writes_nothing(store, fakes) -> None:
    result = TOOLS.get("detect")(store.ctx(fakes), {"image": "bus.jpg", "labels": ["person", "bus"]})
    assert [(b.label, b.box) for b in result.boxes] == [
        ("bus", [20, 230, 800, 720]),
        ("person", [50, 400, 245, 900]),
        ("person", [222, 405, 345, 860]),
    ]
    text = result.text()
    assert text.startswith(f"image {store.images['bus.jpg']} (bus.jpg): 3 found")
    assert "bus 0.95 [20, 230, 800, 720]" in text
    assert _annotations(store) == []


def test_detect_save_writes_proposals(store, fakes) -> None:
    result = TOOLS.get("detect")(store.ctx(fakes), {"image": "zidane.jpg", "labels": ["tie"], "save": True})
    anns = _annotations(store)
    assert [b.annotation_id for b in result.boxes] == [a.id for a in anns] and len(anns) == 1
    assert (anns[0].tool, anns[0].prompt, anns[0].status) == ("detect", "tie", "proposed")
    assert f"saved as #{anns[0].id}" in result.text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"image": "bus.jpg", "labels": ["spaceship"]}, "cannot detect 'spaceship'.*80 COCO classes"),
        ({"image": "buss.jpg", "labels": ["bus"]}, "did you mean: bus.jpg"),
        ({"image": "bus.jpg", "labels": []}, "labels"),
        ({"image": "bus.jpg", "labels": ["bus"], "threshold": 1.5}, "threshold"),
    ],
)
def test_detect_mistakes_are_tool_errors(store, fakes, args, message) -> None:
    with pytest.raises(ToolError, match=message):
        TOOLS.get("detect")(store.ctx(fakes), args)


def test_verify_annotations_and_box(store, fakes) -> None:
    TOOLS.get("detect")(store.ctx(fakes), {"image": "bus.jpg", "labels": ["person", "bus"], "save": True})
    ids = [a.id for a in _annotations(store)]
    result = TOOLS.get("verify")(store.ctx(fakes), {"annotation_ids": ids})
    scores = {c.target: c.score for c in result.checks}
    assert scores == {f"#{ids[0]}": None, f"#{ids[1]}": None, f"#{ids[2]}": 0.8}  # person, person, bus
    assert f"#{ids[1]} person: cannot verify" in result.text()
    box = TOOLS.get("verify")(store.ctx(fakes), {"image": "bus.jpg", "box": [0, 0, 50, 50], "label": "tie"})
    assert box.text() == "box tie: 0.80"
    with pytest.raises(ToolError, match=r"no annotations \[12345\]"):
        TOOLS.get("verify")(store.ctx(fakes), {"annotation_ids": [12345]})
    with pytest.raises(ToolError, match="give annotation_ids"):
        TOOLS.get("verify")(store.ctx(fakes), {"image": "bus.jpg"})


def test_segment_everything_detects_all_classes(store, fakes) -> None:
    result = TOOLS.get("segment_everything")(store.ctx(fakes), {"image": "bus.jpg", "threshold": 0.5})
    assert result.counts == {"person": 2, "bus": 1, "tie": 1}
    assert {a.tool for a in _annotations(store)} == {"segment_everything"}
    assert result.text().startswith(f"image {store.images['bus.jpg']}: saved 4 proposed (2 person, ")
