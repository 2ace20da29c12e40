"""vtest.avi (Debian opencv-doc, people walking) in a project with tracks, for export/import round trips.

The clip is ingested at 1 fps (80 frames: source indexes 0, 10, ..., 790, so exported MOT frame
numbers have gaps). Three tracks: "walker 1" (person, masks on frames 0-40), "walker 2" (person,
masks, frames 20-60, scored), "bag 3" (bag, boxes only, frames 30-50); one untracked person box
on frame 10. :func:`tracks_of` reads a project's tracks back as comparable values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlmodel import Session, col, select

from store.annotations import create_annotation
from store.categories import ensure_categories
from store.history import begin_change
from store.ingest import ingest
from store.masks import rle_from_mask
from store.models import Annotation, Category, ChangeBatch, Image, Track
from store.tracks import create_track

FPS = 1


def ingest_vtest(session: Session, home: Path, project_name: str, clip: Path) -> tuple[int, int]:
    """Ingest the clip at :data:`FPS` into ``project_name``; returns (project id, video id)."""
    report = ingest(session, home=home, project_name=project_name, source=clip, sample_fps=FPS)
    return report.project_id, report.videos[0].video_id


def labelled_vtest(session: Session, home: Path, project_name: str, clip: Path) -> tuple[int, int]:
    """:func:`ingest_vtest` plus the three tracks and the untracked box; committed."""
    project_id, video_id = ingest_vtest(session, home, project_name, clip)
    frames = {
        f.frame_index: f
        for f in session.exec(
            select(Image).where(Image.video_id == video_id).order_by(col(Image.frame_index))
        )
    }
    person, bag = ensure_categories(session, project_id=project_id, names=["person", "bag"])
    batch = begin_change(session, project_id=project_id, actor="seed", description="tracks")
    specs = [
        ("walker 1", person, range(0, 41, 10), 100, None),
        ("walker 2", person, range(20, 61, 10), 400, 0.8),
    ]
    for name, category, span, x0, score in specs:
        track = create_track_row(session, batch, video_id, category.id, name)
        for i in span:
            mask = np.zeros((576, 768), dtype=bool)
            mask[200 : 200 + 120, x0 + i : x0 + i + 50] = True
            create_annotation(
                session, batch=batch, image_id=frames[i].id, category_id=category.id,
                mask=rle_from_mask(mask), score=score, track_id=track,
            )  # fmt: skip
    bag_track = create_track_row(session, batch, video_id, bag.id, "bag 3")
    for i in range(30, 51, 10):
        create_annotation(
            session, batch=batch, image_id=frames[i].id, category_id=bag.id,
            bbox=[600.0 - i, 400.0, 30.0, 25.0], track_id=bag_track,
        )  # fmt: skip
    create_annotation(
        session, batch=batch, image_id=frames[10].id, category_id=person.id, bbox=[5, 5, 40, 90]
    )
    session.commit()
    return project_id, video_id


def create_track_row(session: Session, batch: ChangeBatch, video_id: int, category_id: int, name: str) -> int:
    return create_track(session, batch=batch, video_id=video_id, category_id=category_id, name=name).id


def tracks_of(session: Session, project_id: int) -> dict:
    """``{track name: [(frame index, class, box, mask area, score)]}``, the untracked ones under
    None: what a round trip must keep."""
    rows = session.exec(
        select(Annotation, Image.frame_index, Category.name)
        .join(Image, col(Image.id) == Annotation.image_id)
        .join(Category, col(Category.id) == Annotation.category_id)
        .where(Annotation.project_id == project_id)
    ).all()
    track_names = dict(session.exec(select(Track.id, Track.name).where(Track.project_id == project_id)).all())
    out: dict = {}
    for ann, frame, label in rows:
        key = None if ann.track_id is None else track_names[ann.track_id]
        area = None if ann.mask is None else round(ann.area)
        box = [round(v, 2) for v in ann.bbox]
        out.setdefault(key, []).append((frame, label, box, area, ann.score))
    return {k: sorted(v, key=repr) for k, v in out.items()}


def partition(tracks: dict) -> list:
    """The tracked annotations grouped by track, without the names (a MOT file carries none)."""
    return sorted(rows for key, rows in tracks.items() if key is not None)
