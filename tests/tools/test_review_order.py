"""The review agent's ``hardest_proposals`` tool over a planted real-photo project."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ops.planted import CALLER, plant
from tools.registry import ToolContext, ToolError
from tools.review_order import TOOL


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory, photos: dict[str, Path]) -> ToolContext:
    home = tmp_path_factory.mktemp("hardest") / "home"
    p = plant(home, photos, n=300, reviewed=0.2, findings=10)
    return ToolContext(
        engine=p.env.engine, project_id=p.project_id, home=home, models_dir=home, caller=CALLER
    )


def test_hardest_lists_the_likeliest_wrong_first(ctx: ToolContext) -> None:
    result = TOOL(ctx, {"limit": 5})
    assert len(result.items) == 5
    p = [i["p_wrong"] for i in result.items]
    assert p[0] >= p[-1] and p[0] > 0.5
    assert result.text().count("\n") == 4 and "p(wrong)" in result.text()


def test_images_and_bad_arguments(ctx: ToolContext) -> None:
    images = TOOL(ctx, {"by": "image", "limit": 20}).items
    assert len({i["image_id"] for i in images}) == len(images) == 6
    with pytest.raises(ToolError, match="limit"):
        TOOL(ctx, {"limit": 50})
    with pytest.raises(ToolError, match="no class 'bike'"):
        TOOL(ctx, {"label": "bike"})
