"""The Export tab's import: a COCO-video and a MOT file onto an ingested clip through the same
operation as the CLI and the API; refusals raise for the page to show, and import nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ops import images, tracks
from ops.caller import Caller, local_caller
from ops.errors import Forbidden, Invalid
from store import open_engine
from store.db import new_session
from store.users import create_user, set_membership
from tests.store.video_clips import moving_squares
from ui.services import UIServices
from ui.tabs.imports import import_file

ADMIN = local_caller(via="ui")


@pytest.fixture
def clip(tmp_path: Path, models_dir: Path) -> tuple[UIServices, int]:
    engine = open_engine(tmp_path / "home" / "labelwright.db")
    services = UIServices(engine=engine, home=tmp_path / "home", models_dir=models_dir, backends=lambda: None)
    report = images.ingest(services.env, ADMIN, source=moving_squares(tmp_path / "sq.mp4"), project_name="p")
    return services, report.project_id


def _viewer(services: UIServices, project_id: int) -> Caller:
    with new_session(services.engine) as session:
        user = create_user(session, username="vic")
        set_membership(session, user_id=user.id or 0, project_id=project_id, role="viewer")
        session.commit()
    return Caller("vic", user.id, False, via="ui", credential="session")


def test_import_coco_video_and_mot_from_the_tab(clip, tmp_path: Path) -> None:
    services, project = clip
    coco = {
        "videos": [{"id": 1, "name": "sq.mp4"}],
        "images": [{"id": i, "file_name": f"f{i}.jpg", "width": 320, "height": 240, "video_id": 1,
                    "frame_id": i} for i in range(3)],
        "categories": [{"id": 1, "name": "square"}],
        "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [10 + 6 * i, 20, 40, 40],
                         "track_id": 4} for i in range(3)],
    }  # fmt: skip
    (tmp_path / "v.json").write_text(json.dumps(coco))
    done = import_file(services, ADMIN, project, tmp_path / "v.json", "COCO video (tracks)")
    assert (done["imported"], list(done["tracks"])) == (3, ["4"])

    (tmp_path / "sq.txt").write_text("1,1,10,150,40,40,1,1,1\n2,1,16,150,40,40,1,1,1\n3,2,5,5,9,9,1,8,1\n")
    mot = import_file(
        services, ADMIN, project, tmp_path / "sq.txt", "MOTChallenge (tracks)", status="proposed",
        class_map="1=walker, 8=-",
    )  # fmt: skip
    assert (mot["imported"], mot["left_out"], mot["videos"]) == (2, 1, {"sq.mp4": 1})
    listed = {t.label: t.annotations for t in tracks.list_tracks(services.env, ADMIN, project)}
    assert listed == {"square": 3, "walker": 2}


def test_refusals_import_nothing(clip, tmp_path: Path) -> None:
    services, project = clip
    (tmp_path / "sq.txt").write_text("1,1,10,150,40,40\n99,1,16,150,40,40\n")
    with pytest.raises(Invalid, match="line 2: frame index 98 is beyond video 'sq.mp4'"):
        import_file(services, ADMIN, project, tmp_path / "sq.txt", "MOTChallenge (tracks)", class_name="x")
    with pytest.raises(Forbidden):
        viewer = _viewer(services, project)
        import_file(services, viewer, project, tmp_path / "sq.txt", "MOTChallenge (tracks)", class_name="x")
    with pytest.raises(ValueError, match="format must be one of"):
        import_file(services, ADMIN, project, tmp_path / "sq.txt", "YOLO")
    assert tracks.list_tracks(services.env, ADMIN, project) == []
