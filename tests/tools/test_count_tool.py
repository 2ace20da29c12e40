"""count: grouped counts straight from the store, with filters."""

from __future__ import annotations

import pytest

from ops.caller import local_caller
from ops.unit import within
from store.db import new_session
from store.history import begin_change
from tools.catalog import vision_tools
from tools.pipeline import label_image, resolve_image
from tools.registry import ToolError

COUNT = vision_tools().get("count")


@pytest.fixture
def labeled(store, fakes):
    with new_session(store.engine) as session:
        for name in ("bus.jpg", "zidane.jpg"):
            image = resolve_image(session, project_id=store.project_id, ref=name)
            with within(session, local_caller("agent"), store.project_id) as unit:
                label_image(
                    unit,
                    backends=fakes,
                    home=store.home,
                    image=image,
                    labels=["person", "tie"],
                    threshold=0.1,
                )
        session.commit()
        from store.annotation_queries import query_annotations
        from store.annotations import set_status

        first = query_annotations(session, project_id=store.project_id, limit=1)[0]
        set_status(
            session,
            batch=begin_change(session, project_id=store.project_id, actor="t", description="x"),
            ids=[first.id],
            status="accepted",
        )
        session.commit()
    return store


@pytest.mark.parametrize(
    ("args", "total", "groups"),
    [
        ({}, 8, {"person": 6, "tie": 2}),
        ({"by": "image"}, 8, {"bus.jpg": 4, "zidane.jpg": 4}),
        ({"by": "status"}, 8, {"proposed": 7, "accepted": 1}),
        ({"label": "tie"}, 2, {"tie": 2}),
        ({"image": "zidane.jpg", "by": "class"}, 4, {"person": 3, "tie": 1}),
        ({"status": "accepted"}, 1, {"person": 1}),
        ({"min_score": 0.7}, 4, {"person": 4}),
        ({"max_score": 0.25}, 2, {"person": 2}),
        ({"label": "dog"}, None, None),
    ],
)
def test_count(labeled, args, total, groups) -> None:
    if total is None:
        with pytest.raises(ToolError, match="no class 'dog'"):
            COUNT(labeled.ctx(), args)
        return
    result = COUNT(labeled.ctx(), args)  # no backends: counting never loads a model
    assert (result.total, result.groups) == (total, groups)
    assert result.text().startswith(f"{total} annotations by {result.by}: ")
