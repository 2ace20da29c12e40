"""A real ingested clip (moving squares) in the template store's project, with three tracks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlmodel import col, select

from ops.unit import Env
from store.annotations import create_annotation
from store.categories import ensure_categories
from store.db import new_session
from store.history import begin_change
from store.ingest import ingest
from store.models import Image
from store.tracks import create_track
from tests.store.video_clips import moving_squares


@dataclass
class Clip:
    env: Env
    project_id: int
    video_id: int
    a: int  # square 1 (top), frames 0-19
    b: int  # square 2 (bottom), frames 0-9
    c: int  # square 2, frames 10-19 (a fragment of the same object)


def true_box(square: int, frame: int) -> list[float]:
    x0, y0 = (10, 20) if square == 1 else (10, 150)
    return [x0 + 6 * frame, y0, 40, 40]


@pytest.fixture
def squares_clip(ops_world, tmp_path: Path) -> Clip:
    world, env = ops_world
    return add_squares(env, tmp_path)


def add_squares(env: Env, tmp_path: Path) -> Clip:
    """Ingest the moving-squares clip into project "streets" (the template's; created when
    missing) and write tracks A, B, C on the squares' true boxes."""
    with new_session(env.engine) as s:
        report = ingest(s, home=env.home, project_name="streets", source=moving_squares(tmp_path / "sq.mp4"))
        video_id, project_id = report.videos[0].video_id, report.project_id
        frames = list(
            s.exec(select(Image).where(Image.video_id == video_id).order_by(col(Image.frame_index)))
        )
        (person,) = ensure_categories(s, project_id=project_id, names=["person"])
        batch = begin_change(s, project_id=project_id, actor="seed", description="tracks")
        ids = [
            create_track(s, batch=batch, video_id=video_id, category_id=person.id, name=n).id for n in "ABC"
        ]
        for frame in frames:
            i = frame.frame_index
            spec = [(ids[0], 1)] + [(ids[1] if i < 10 else ids[2], 2)]
            for track, square in spec:
                create_annotation(
                    s, batch=batch, image_id=frame.id, category_id=person.id, bbox=true_box(square, i),
                    track_id=track,
                )  # fmt: skip
        s.commit()
    return Clip(env, project_id, video_id, *ids)


def who(clip: Clip, name: str):
    from tests.ops.conftest import caller_of  # here: conftest imports this module's fixture

    return caller_of(clip.env.engine, name)
