"""The Review stream's logic over a real store (temp SQLite, the two real photos): it walks the
review order, goes back through what it showed, decides through the operations at the version it
drew, shows a refusal as its message and changes nothing, and counts the rate."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from ops import annotations, images, review_order
from ops.caller import Caller, local_caller
from ops.unit import Env
from store import list_categories, new_session, open_engine, query_annotations
from store.masks import rle_from_mask
from store.users import create_user, set_membership
from ui import actions
from ui.app import build_ui
from ui.services import UIServices
from ui.tabs.stream import Stream, back, decide, draw, forward, handle, rate_line

ADMIN = local_caller(via="ui")
CLASSES = ("person", "bus", "tie")


def seed_proposals(env: Env, project_id: int, n: int = 24) -> list[int]:
    """``n`` scored proposals of person, bus and tie spread over the two photos, every other one
    with a mask; returns their ids in creation order."""
    ids = []
    for k in range(n):
        image = images.get(env, ADMIN, project_id, "bus.jpg" if k % 2 else "zidane.jpg")
        x, y = 20 + 23 * k, 30 + 11 * k
        mask = None
        if k % 2 == 0:
            pixels = np.zeros((image.height, image.width), bool)
            pixels[y : y + 120, x : x + 90] = True
            mask = rle_from_mask(pixels)
        item = annotations.NewAnnotation(
            label=CLASSES[k % 3], bbox=[x, y, 90, 120], mask=mask, score=round(0.05 + 0.9 * k / n, 3),
            model="test-detector",
        )  # fmt: skip
        (created,) = annotations.create(env, ADMIN, project_id, image_id=image.id or 0, items=[item])
        ids.append(created.id or 0)
    return ids


@pytest.fixture
def services(tmp_path: Path, models_dir: Path) -> UIServices:
    engine = open_engine(tmp_path / "home" / "labelwright.db")
    return UIServices(engine=engine, home=tmp_path / "home", models_dir=models_dir, backends=lambda: None)


@pytest.fixture
def project(services: UIServices, photo_zip: Path) -> int:
    project_id, _ = actions.create_project(services, ADMIN, "street")
    actions.upload_zip(services, ADMIN, project_id, photo_zip)
    seed_proposals(services.env, project_id)
    return project_id


def _rows(services: UIServices, project_id: int) -> dict[int, tuple[str, str, int]]:
    """id -> (status, class, version) as stored."""
    with new_session(services.engine) as session:
        rows = query_annotations(session, project_id=project_id)
        names = {c.id: c.name for c in list_categories(session, project_id=project_id)}
    return {a.id or 0: (a.status.value, names[a.category_id], a.version) for a in rows}


def _opened(services: UIServices, caller: Caller, project_id: int) -> Stream:
    stream = forward(services, caller, Stream(project_id))
    return draw(services, caller, stream, 0.0)[0]


def test_the_stream_walks_the_review_order_and_back_retraces_it(services: UIServices, project: int) -> None:
    order = [i.annotation_id for i in review_order.queue(services.env, ADMIN, project, limit=6)]
    stream = _opened(services, ADMIN, project)
    walked = [stream.current().annotation_id]  # type: ignore[union-attr]
    for _ in range(5):
        stream = forward(services, ADMIN, stream)
        walked.append(stream.current().annotation_id)  # type: ignore[union-attr]
    assert walked == order  # nothing decided: the order as the queue ranks it
    stream = back(back(stream))
    assert stream.current().annotation_id == order[3]  # type: ignore[union-attr]
    stream = forward(services, ADMIN, stream)
    assert stream.current().annotation_id == order[4] and len(stream.items) == 6  # from what it showed
    assert back(replace(stream, at=0)).at == 0


def test_keys_decide_through_the_operations_and_the_stream_moves_on(
    services: UIServices, project: int
) -> None:
    stream = _opened(services, ADMIN, project)
    first = stream.current().annotation_id  # type: ignore[union-attr]
    before = _rows(services, project)
    stream, message = decide(services, ADMIN, stream, "accepted")
    assert message == f"#{first} accepted"
    stream = draw(services, ADMIN, stream, 0.0)[0]
    second = stream.current().annotation_id  # type: ignore[union-attr]
    assert second != first
    stream, message = decide(services, ADMIN, stream, "relabel", number=2)
    assert message.startswith(f"#{second} is now bus")
    stream = draw(services, ADMIN, stream, 0.0)[0]
    third = stream.current().annotation_id  # type: ignore[union-attr]
    stream, _ = decide(services, ADMIN, stream, "rejected")
    after = _rows(services, project)
    assert after[first][0] == "accepted" and after[first][2] == before[first][2] + 1
    assert after[second][:2] == ("proposed", "bus")
    assert after[third][0] == "rejected"
    assert dict(stream.decided) == {first: "accepted", second: "relabel bus", third: "rejected"}
    with pytest.raises(ValueError, match=r"relabel keys are 1-3 \(the project's classes\), got 7"):
        decide(services, ADMIN, draw(services, ADMIN, stream, 0.0)[0], "relabel", number=7)


def test_a_stale_item_is_refused_and_the_stream_stays_on_it(services: UIServices, project: int) -> None:
    stream = _opened(services, ADMIN, project)
    item = stream.current()
    assert item is not None and stream.version is not None
    actions.relabel_annotation(
        services, ADMIN, project, item.annotation_id, stream.version, "tie"
    )  # elsewhere
    request = SimpleNamespace(username=None)  # the local user of a loopback server
    shown, view, line, _rate, message = handle(
        services, project, stream, request, lambda c, s: decide(services, c, s, "accepted")
    )
    assert message.startswith("⚠️") and "version" in message
    assert shown.current() == item and shown.version == stream.version + 1  # redrawn as it is now
    assert f"#{item.annotation_id} tie" in line and "lw-frame" in view
    assert _rows(services, project)[item.annotation_id][0] == "proposed"
    accepted = handle(services, project, shown, request, lambda c, s: decide(services, c, s, "accepted"))
    assert accepted[4] == f"#{item.annotation_id} accepted"


def test_a_viewer_sees_the_stream_and_is_refused_with_a_message(services: UIServices, project: int) -> None:
    with new_session(services.engine) as session:
        user = create_user(session, username="vic")
        set_membership(session, user_id=user.id or 0, project_id=project, role="viewer")
        session.commit()
    vic = Caller("vic", user.id, False, via="ui", credential="session")
    services.caller_for = lambda name: vic if name == "vic" else None
    request = SimpleNamespace(username="vic")
    before = _rows(services, project)
    opened = handle(services, project, Stream(), request, lambda c, s: (forward(services, c, s), ""))
    stream = opened[0]
    assert stream.current() is not None and "lw-frame" in opened[1] and opened[4] == ""
    for key in ("accepted", "rejected", "relabel"):
        result = handle(services, project, stream, request, lambda c, s, k=key: decide(services, c, s, k, 1))
        assert (
            result[4]
            == f"⚠️ annotation.edit needs the annotator role in project {project}; you (vic) are viewer"
        )
        assert result[0].current() == stream.current()  # stays on the item
    assert _rows(services, project) == before


def test_the_view_shows_the_mask_layer_the_box_and_the_class_keys(services: UIServices, project: int) -> None:
    stream = _opened(services, ADMIN, project)
    while (
        stream.current() is not None
        and _rows(services, project)[stream.current().annotation_id][1] != "person"
    ):  # type: ignore[union-attr]
        stream = forward(services, ADMIN, stream)
    _, view, line, rate, _ = (*draw(services, ADMIN, stream, 0.0), "")
    assert "class='lw-mask'" in view and "data:image/png;base64," in view  # persons have masks here
    assert "data-box='" in view and "<rect" in view
    assert "**1** person · **2** bus · **3** tie" in line and rate == "0 reviewed"


def test_the_end_of_the_stream_says_so_and_back_returns(services: UIServices, project: int) -> None:
    stream = _opened(services, ADMIN, project)
    total = len(review_order.queue(services.env, ADMIN, project, limit=100))
    for _ in range(total):
        stream = forward(services, ADMIN, stream)
    assert stream.current() is None and len(stream.items) == total
    _, view, line, _ = draw(services, ADMIN, stream, 0.0)
    assert "Nothing left to review" in view and line == "Nothing left to review."
    assert back(stream).current() == stream.items[-1]
    with pytest.raises(ValueError, match="nothing on screen to decide"):
        decide(services, ADMIN, stream, "accepted")


def test_the_rate_counts_each_proposal_once_per_minute_since_the_start() -> None:
    stream = Stream(1, started=100.0, decided=((1, "accepted"), (2, "rejected"), (1, "rejected")))
    assert stream.rate(160.0) == (2, 2.0)
    assert rate_line(stream, 130.0) == "2 reviewed · 4.0 per minute"
    assert rate_line(Stream(1, started=100.0), 200.0) == "0 reviewed"


def test_the_tab_is_laid_out(services: UIServices) -> None:
    demo = build_ui(services)
    ids = {c.get("props", {}).get("elem_id") for c in demo.config["components"]}
    assert {"lw-stream-view", "lw-stream-accept", "lw-stream-reject", "lw-stream-next", "lw-stream-back",
            "lw-stream-edit", "lw-stream-opacity", "lw-stream-rate"} <= ids  # fmt: skip
