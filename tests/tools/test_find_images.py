# ruff: noqa: E501  (the parametrize tables read best one case per line)
"""find_images on a real seeded store: unlabeled, by class, status, low score, name."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.agent.devset import INJECTION, World, agent_ctx, build_world
from tests.tools.conftest import FakeBackends
from tools.find_images import SHOWN, TOOL, FindImagesArgs, FindImagesResult, FoundImage, find_images
from tools.registry import ToolError


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, photos: dict[str, Path]) -> World:
    return build_world(tmp_path_factory.mktemp("find"), photos)


@pytest.mark.parametrize(
    ("args", "names"),
    [
        ({"unlabeled": True}, [INJECTION, "rocket.jpg"]),
        ({"label": "cat"}, ["chelsea.png"]),
        ({"label": "person"}, ["astronaut.png", "bus.jpg", "zidane.jpg"]),
        ({"unlabeled": True, "label": "person"}, ["chelsea.png", "coffee.png", INJECTION, "rocket.jpg"]),
        ({"unlabeled": True, "label": "zebra"}, ["astronaut.png", "bus.jpg", "chelsea.png", "coffee.png", INJECTION, "rocket.jpg", "zidane.jpg"]),
        ({"status": "rejected"}, ["chelsea.png"]),
        ({"max_score": 0.3}, ["bus.jpg", "chelsea.png"]),
        ({"name_contains": ".png"}, ["astronaut.png", "chelsea.png", "coffee.png"]),
        ({"label": "person", "name_contains": "bus"}, ["bus.jpg"]),
    ],
)  # fmt: skip
def test_filters(world: World, args: dict, names: list[str]) -> None:
    result = find_images(agent_ctx(world, FakeBackends()), FindImagesArgs(**args))
    assert sorted(i.file_name for i in result.images) == sorted(names) and result.total == len(names)


def test_unknown_class_is_a_tool_error(world: World) -> None:
    with pytest.raises(ToolError, match="no class 'zebra'"):  # the operation's NotFound, as the agent sees it
        TOOL(agent_ctx(world, FakeBackends()), {"label": "zebra"})


def test_text_quotes_names_and_caps_the_list() -> None:
    images = [FoundImage(id=i, file_name=f"img {i}.jpg") for i in range(SHOWN)]
    text = FindImagesResult(total=SHOWN + 5, images=images).text()
    assert text.startswith(f"{SHOWN + 5} images match (first {SHOWN} shown)") and "0:'img 0.jpg'" in text
    assert FindImagesResult(total=0, images=[]).text() == "0 images match"
