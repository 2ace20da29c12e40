"""Track checks on constructed tracks (flicker, jump, class swap, overlap), and through the runner
on a real ingested clip."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import col, select

from ops.unit import Env
from store.annotations import delete_annotations
from store.db import new_session, open_engine
from store.history import begin_change
from store.models import Annotation, AuditFinding, Image
from tests.ops.video_clip import add_squares
from tools.audit.findings import AuditAnnotation
from tools.audit.runner import run_audit
from tools.audit.tracks import CLASS_SWAP, FLICKER, JUMP, OVERLAP, check_tracks

FRAMES = {1: list(range(0, 60, 3))}  # a video sampled every third frame: 0, 3, ..., 57
_ids = iter(range(1, 10_000))


def track(track_id: int, frames: list[int], box=lambda f: [10 + f, 20, 40, 40], label=lambda f: "person"):
    return [
        AuditAnnotation(
            id=next(_ids),
            image_id=100 + f,
            image_name=f"v.mp4/frame_{f:06d}.jpg",
            image_size=(320, 240),
            category=label(f),
            bbox=box(f),
            track_id=track_id,
            video_id=1,
            frame_index=f,
        )  # fmt: skip
        for f in frames
    ]


def kinds(found) -> list[tuple[str, int | None]]:
    return sorted((f.kind, f.evidence.get("track_id")) for f in found)


def test_a_clean_track_on_a_sparse_sample_has_no_finding() -> None:
    assert check_tracks(track(1, FRAMES[1]), video_frames=FRAMES) == []


def test_flicker_is_a_gap_of_sampled_frames() -> None:
    anns = track(1, [f for f in FRAMES[1] if f not in (21, 24)])
    (found,) = check_tracks(anns, video_frames=FRAMES)
    assert found.kind == FLICKER and found.evidence["missing"] == 2 and found.confidence == 0.8
    assert found.message == "track 1 is missing on 2 sampled frames between frames 18 and 27"
    assert found.annotation_id == next(a.id for a in anns if a.frame_index == 18)


def test_jump_is_a_move_larger_than_the_box() -> None:
    anns = track(2, FRAMES[1], box=lambda f: [200 if f >= 30 else 10, 20, 40, 40])
    (found,) = check_tracks(anns, video_frames=FRAMES)
    assert found.kind == JUMP and found.evidence["from_frame"] == 27
    assert found.annotation_id == next(a.id for a in anns if a.frame_index == 30)
    assert found.evidence["move"] == 4.75  # 190 px at a 40 px box


def test_class_swap_flags_the_odd_frames() -> None:
    anns = track(3, FRAMES[1], label=lambda f: "car" if f in (12, 15) else "person")
    found = check_tracks(anns, video_frames=FRAMES)
    assert kinds(found) == [(CLASS_SWAP, 3), (CLASS_SWAP, 3)]
    assert {f.image_id for f in found} == {112, 115} and found[0].confidence == 0.9


def test_overlap_is_one_object_tracked_twice() -> None:
    a = track(4, FRAMES[1])
    b = track(5, FRAMES[1][5:12], box=lambda f: [11 + f, 21, 40, 40])  # the same square, 7 frames
    c = track(6, FRAMES[1], box=lambda f: [10 + f, 150, 40, 40])  # another object
    (found,) = check_tracks(a + b + c, video_frames=FRAMES)
    assert found.kind == OVERLAP and (found.evidence["track_id"], found.evidence["other_track"]) == (5, 4)
    assert found.message == "track 5 covers the same object as track 4 on 7 of 7 shared frames"


def test_runner_finds_a_flicker_on_a_real_clip_and_closes_it_after_undo(tmp_path: Path) -> None:
    home = tmp_path / "home"
    engine = open_engine(home / "labelwright.db")
    clip = add_squares(Env(engine, home), tmp_path)
    with new_session(engine) as s:
        gone = s.exec(
            select(Annotation.id).join(Image, col(Image.id) == Annotation.image_id)
            .where(Annotation.track_id == clip.a, col(Image.frame_index).in_([6, 7]))
        ).all()  # fmt: skip
        batch = begin_change(s, project_id=clip.project_id, actor="t", description="holes")
        delete_annotations(s, batch=batch, ids=list(gone))
        s.commit()
        report = run_audit(s, project_id=clip.project_id, home=home)
    tracked = [f for f in report.findings if f["kind"].startswith("track_")]
    assert [(f["kind"], f["evidence"]["from_frame"], f["evidence"]["to_frame"]) for f in tracked] == [
        (FLICKER, 5, 8)
    ]
    from store.history import undo

    with new_session(engine) as s:
        undo(s, project_id=clip.project_id, actor="t")
        s.commit()
        run_audit(s, project_id=clip.project_id, home=home)
        rows = s.exec(select(AuditFinding).where(AuditFinding.kind == FLICKER)).all()
    assert [(r.status, r.resolution) for r in rows] == [("closed", "fixed")]
    engine.dispose()
