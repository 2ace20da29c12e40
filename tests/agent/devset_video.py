# ruff: noqa: E501  (the case table reads best as one case per line)
"""The command agent's video dev set: requests about tracks, judged like :mod:`tests.agent.devset`.

Every case runs on a fresh copy of one seeded video project (:func:`build_video_world`): the first
12 frames of Debian opencv-doc's vtest.avi (people walking), halved, and four ``person`` tracks
with known spans: tracks 1 and 2 on every frame, track 3 on frames 0-5 and track 4 on frames 6-11
(a fragment of the same walker, so merging 4 into 3 is allowed). 36 boxes, 4 distinct objects:
counting boxes instead of tracks gives the wrong answer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func
from sqlmodel import col, select

from store.db import new_session, open_engine
from store.models import Annotation, Image
from tests.agent.devset import Case, World, both, says, state

FRAMES = 12
# track id -> its frames (ids are those of a fresh store, checked by build_video_world)
SPANS = {1: range(0, 12), 2: range(0, 12), 3: range(0, 6), 4: range(6, 12)}
BOXES = sum(len(frames) for frames in SPANS.values())


def build_video_world(dest: Path, vtest: Path) -> World:
    """Ingest 12 frames of ``vtest`` (vtest.avi) into project "streets" under ``dest`` and seed the
    tracks of :data:`SPANS` (each box walks 3 px a frame)."""
    from store.annotations import create_annotation
    from store.categories import ensure_categories
    from store.history import begin_change
    from store.ingest import ingest
    from store.tracks import create_track
    from tests.store.video_clips import reencode

    clip = reencode(vtest, dest / "walk.mp4", frames=FRAMES)
    home = dest / "home"
    engine = open_engine(home / "labelwright.db")
    with new_session(engine) as session:
        report = ingest(session, home=home, project_name="streets", source=clip)
        video_id, project_id = report.videos[0].video_id, report.project_id
        frames = list(
            session.exec(select(Image).where(Image.video_id == video_id).order_by(col(Image.frame_index)))
        )
        assert [f.frame_index for f in frames] == list(range(FRAMES)), [f.frame_index for f in frames]
        (person,) = ensure_categories(session, project_id=project_id, names=["person"])
        batch = begin_change(session, project_id=project_id, actor="seed", description="tracks")
        for track_id, span in SPANS.items():
            track = create_track(
                session, batch=batch, video_id=video_id, category_id=person.id, name=f"person {track_id}"
            )
            assert track.id == track_id, (track.id, track_id)
            for i in span:
                create_annotation(
                    session, batch=batch, image_id=frames[i].id, category_id=person.id,
                    bbox=[20.0 + 80 * (track_id % 3) + 3 * i, 60.0 + 40 * (track_id // 3), 30.0, 70.0],
                    track_id=track_id, tool="seed",
                )  # fmt: skip
        session.commit()
        images = {f.file_name: f.id or 0 for f in frames}
    return World(engine, home, project_id, images)


def on_track(world: World) -> dict[int, int]:
    """Annotations per track id (tracks with none left out)."""
    with new_session(world.engine) as session:
        rows = session.exec(
            select(Annotation.track_id, func.count())
            .where(Annotation.project_id == world.project_id, col(Annotation.track_id).is_not(None))
            .group_by(Annotation.track_id)
        ).all()
    return {int(t): int(n) for t, n in rows}


def _tracks(expect: dict[int, int]) -> Callable[[World], bool]:
    return lambda w: on_track(w) == expect


SEEDED = {t: len(span) for t, span in SPANS.items()}
untouched = _tracks(SEEDED)

VIDEO_CASES: list[Case] = [
    Case("video count objects", ["How many distinct people are in the video?"], both(says(len(SPANS)), state(untouched, "no change")), "video"),
    Case("video find frames", ["Which frames show track 3?"], both(says("0-5"), state(untouched, "no change")), "video"),
    Case("video merge confirm", ["Merge track 4 into track 3.", "yes"], state(_tracks({1: 12, 2: 12, 3: 12}), "track 4 merged into 3"), "video"),
    Case("video delete confirm", ["Delete track 2.", "yes"], state(_tracks({1: 12, 3: 6, 4: 6}), "track 2 deleted"), "video"),
]  # fmt: skip
