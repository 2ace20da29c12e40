"""Interactive segmentation over the API, as ``curl`` would call it: a box or clicks in, a mask
proposal out (COCO RLE, polygon, score, bbox); stored only with save=true. Fake segmenter (an
ellipse in the box, a disc around the first click) so the test checks the route, not a model."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from store.masks import mask_from_rle
from store.polygons import rle_from_polygons
from tests.server.agent_fakes import Chatty, use_model
from tests.server.conftest import World, make_app


@pytest.fixture
def api(world: World) -> TestClient:
    app = make_app(world)
    use_model(app, Chatty())
    return TestClient(app, base_url="http://localhost")


def url(world: World, image: str = "bus.jpg") -> str:
    return f"/api/v1/projects/{world.project_id}/images/{world.images[image]}/segment"


def annotations(api: TestClient, world: World) -> list[dict]:
    return api.get(f"/api/v1/projects/{world.project_id}/annotations", headers=world.auth("viewer")).json()


def test_a_box_gives_a_mask_and_stores_nothing(api: TestClient, world: World) -> None:
    before = len(annotations(api, world))
    response = api.post(url(world), json={"box": [20, 230, 800, 720]}, headers=world.auth("annotator"))
    assert response.status_code == 200, response.text
    out = response.json()
    mask = mask_from_rle(out["rle"])
    assert mask.shape == (1080, 810) and out["rle"]["size"] == [1080, 810]
    assert out["bbox"] == pytest.approx([20, 230, 780, 490], abs=2)  # COCO [x, y, w, h]
    assert out["score"] == pytest.approx(0.9) and out["annotation_id"] is None
    redrawn = mask_from_rle(rle_from_polygons([out["polygon"]], 1080, 810))
    assert (redrawn & mask).sum() / (redrawn | mask).sum() > 0.97
    assert len(annotations(api, world)) == before


def test_clicks_give_a_mask_and_save_stores_it(api: TestClient, world: World) -> None:
    body = {"points": [[560, 300], [100, 100]], "labels": [1, 0], "save": True, "label": "face"}
    response = api.post(url(world, "zidane.jpg"), json=body, headers=world.auth("annotator"))
    assert response.status_code == 200, response.text
    out = response.json()
    assert np.count_nonzero(mask_from_rle(out["rle"])) == pytest.approx(3.14159 * 400, rel=0.05)
    stored = next(a for a in annotations(api, world) if a["id"] == out["annotation_id"])
    assert (stored["status"], stored["tool"], stored["author"]) == ("proposed", "segment", "annotator")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "give a box or points"),
        ({"box": [10, 10, 5, 50]}, "x2 > x1"),
        ({"box": [10, 10, 5000, 50]}, "outside image"),
        ({"points": [[1, 2]], "labels": [1, 0]}, "one value per point"),
        ({"box": [20, 230, 800, 720], "save": True}, "needs the class"),
    ],
)
def test_bad_prompts_are_422_with_a_reason(api: TestClient, world: World, body: dict, message: str) -> None:
    response = api.post(url(world), json=body, headers=world.auth("annotator"))
    assert response.status_code == 422 and message in response.json()["detail"], response.text


def test_a_viewer_may_not_spend_model_time(api: TestClient, world: World) -> None:
    box = {"box": [20, 230, 800, 720]}
    assert api.post(url(world), json=box, headers=world.auth("viewer")).status_code == 403
    assert api.post(url(world), json=box).status_code == 401
    missing = f"/api/v1/projects/{world.project_id}/images/999/segment"
    assert api.post(missing, json=box, headers=world.auth("annotator")).status_code == 404


def test_the_segment_route_is_documented_with_examples(world: World) -> None:
    spec = make_app(world).openapi()
    post = spec["paths"]["/api/v1/projects/{project_id}/images/{image_id}/segment"]["post"]
    assert "rle" in post["responses"]["200"]["content"]["application/json"]["example"]
    examples = spec["components"]["schemas"]["SegmentRequest"]["examples"]
    assert {"points": [[560, 300], [100, 100]], "labels": [1, 0]} in examples
