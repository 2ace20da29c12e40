"""Video ingest on real clips (Debian opencv-doc): sampled frames stored as images, all or nothing."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlmodel import Session, col, select

from store.ingest import ingest
from store.ingest_sources import IngestLimits
from store.models import Image, Video
from tests.store.video_clips import damaged, reencode, truncated


def _frames(session: Session, video_id: int) -> list[Image]:
    statement = select(Image).where(Image.video_id == video_id).order_by(col(Image.frame_index))
    return list(session.exec(statement))


def _stored_files(home: Path) -> list[Path]:
    return sorted(p for p in (home / "images").rglob("*") if p.is_file())


def test_a_clip_at_two_frames_a_second_becomes_its_frames(session: Session, tmp_path: Path, clips) -> None:
    home = tmp_path / "home"
    report = ingest(session, home=home, project_name="traffic", source=clips["vtest.avi"], sample_fps=2)
    assert report.added == [] and report.skipped == []
    (added,) = report.videos
    video = session.get(Video, added.video_id)
    assert video is not None
    assert (video.file_name, video.fps, video.frame_count, video.sample_fps) == ("vtest.avi", 10.0, 795, 2)
    assert (video.width, video.height, video.duration_s) == (768, 576, pytest.approx(79.5))
    frames = _frames(session, added.video_id)
    assert len(frames) == added.frames == 159  # 79.5 s at 2 fps
    assert [f.frame_index for f in frames[:3]] == [0, 5, 10]
    assert [f.timestamp_s for f in frames[:3]] == pytest.approx([0.0, 0.5, 1.0])
    assert frames[3].file_name == "vtest.avi/frame_000015.jpg"
    with PILImage.open(home / frames[3].path) as im:
        assert (im.format, im.size) == ("JPEG", (768, 576))
    assert len({f.sha256 for f in frames}) == len(frames) == len(_stored_files(home))


@pytest.mark.parametrize("ext", [".mp4", ".mov", ".webm"])
def test_other_containers_ingest(session: Session, tmp_path: Path, clips, ext: str) -> None:
    clip = reencode(clips["vtest.avi"], tmp_path / f"walk{ext}", frames=12, fps=10)
    report = ingest(session, home=tmp_path / "home", project_name="p", source=clip)
    (added,) = report.videos
    frames = _frames(session, added.video_id)
    assert [f.frame_index for f in frames] == list(range(12))
    assert frames[-1].timestamp_s == pytest.approx(1.1)
    assert (frames[0].width, frames[0].height) == (384, 288)


def test_megamind_clips_with_packed_b_frames_keep_display_order(session: Session, tmp_path: Path, clips):
    # Both Megamind files are XviD with packed B-frames, whose FFmpeg pts go backwards; the frame
    # slots must be used. Megamind_bugy.avi (its header says 30 fps for 23.976 fps content) decodes
    # whole without one decoder error in FFmpeg, so it is accepted: see the damaged cases below.
    report = ingest(session, home=tmp_path / "home", project_name="p", source=clips["Megamind.avi"])
    (added,) = report.videos
    times = [f.timestamp_s for f in _frames(session, added.video_id)]
    assert len(times) == 270 and times == sorted(times) and len(set(times)) == 270


def test_a_zip_of_videos_and_photos(session: Session, tmp_path: Path, clips, photos) -> None:
    bad = truncated(clips["vtest.avi"], tmp_path / "cut.avi")
    archive = tmp_path / "mixed.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(clips["tree.avi"], "clips/tree.avi")
        zf.write(bad, "clips/cut.avi")
        zf.write(photos["bus.jpg"], "bus.jpg")
        zf.write(clips["tree.avi"], "again/tree.avi")
    home = tmp_path / "home"
    report = ingest(session, home=home, project_name="p", source=archive, sample_fps=1)
    assert [name for name, _ in report.added] == ["bus.jpg"]
    assert [v.file_name for v in report.videos] == ["clips/tree.avi"]
    assert report.duplicates == [("again/tree.avi", "clips/tree.avi")]
    ((name, reason),) = report.skipped
    assert name == "clips/cut.avi" and ("truncated" in reason or "corrupt" in reason)
    assert len(session.exec(select(Video)).all()) == 1
    frames = _frames(session, report.videos[0].video_id)
    assert len(frames) == report.videos[0].frames == 30  # 29.6 s at 1 fps
    assert len(_stored_files(home)) == len(frames) + 1  # the cut clip left no frame behind


@pytest.mark.parametrize("make", [truncated, damaged], ids=["truncated", "damaged"])
def test_a_broken_video_is_refused_and_leaves_nothing(session: Session, tmp_path: Path, clips, make) -> None:
    bad = make(clips["vtest.avi"], tmp_path / "bad.avi")
    home = tmp_path / "home"
    report = ingest(session, home=home, project_name="p", source=bad)
    ((name, reason),) = report.skipped
    assert name == "bad.avi" and reason.startswith(("truncated video", "corrupt video"))
    assert report.videos == [] and session.exec(select(Image)).all() == []
    assert session.exec(select(Video)).all() == [] and _stored_files(home) == []


@pytest.mark.parametrize(
    ("limits", "fps", "expected"),
    [
        (IngestLimits(max_video_frames=50), None, "too many frames: over max_video_frames=50"),
        (IngestLimits(max_video_seconds=10), None, "video too long: 29.6 s > max_video_seconds=10"),
        (IngestLimits(max_pixels=320 * 239), None, "video frames too large: 320x240"),
        (IngestLimits(max_file_bytes=1000), None, "file too large"),
    ],
)
def test_limits_refuse_a_video_clearly(session, tmp_path: Path, clips, limits, fps, expected) -> None:
    home = tmp_path / "home"
    report = ingest(session, home=home, project_name="p", source=clips["tree.avi"], limits=limits)
    ((_, reason),) = report.skipped
    assert reason.startswith(expected)
    assert session.exec(select(Image)).all() == [] and _stored_files(home) == []


def test_sampling_under_the_cap_passes(session: Session, tmp_path: Path, clips) -> None:
    limits = IngestLimits(max_video_frames=50)
    report = ingest(
        session, home=tmp_path / "h", project_name="p", source=clips["tree.avi"], limits=limits, sample_fps=1
    )
    assert report.videos[0].frames == 30


def test_the_same_clip_twice_is_a_duplicate(session: Session, tmp_path: Path, clips) -> None:
    home = tmp_path / "home"
    ingest(session, home=home, project_name="p", source=clips["tree.avi"], sample_fps=1)
    again = ingest(session, home=home, project_name="p", source=clips["tree.avi"], sample_fps=1)
    assert again.videos == [] and again.duplicates == [("tree.avi", "tree.avi")]


@pytest.mark.parametrize("fps", [0, -1.0])
def test_sample_fps_must_be_positive(session: Session, tmp_path: Path, clips, fps) -> None:
    with pytest.raises(ValueError, match="sample_fps must be a positive number"):
        ingest(session, home=tmp_path, project_name="p", source=clips["tree.avi"], sample_fps=fps)


def test_deleting_the_project_removes_its_videos_and_tracks(session: Session, tmp_path: Path, clips) -> None:
    from store.categories import ensure_categories
    from store.history import begin_change
    from store.models import Project, Track
    from store.projects import delete_project
    from store.tracks import create_track

    report = ingest(session, home=tmp_path / "h", project_name="p", source=clips["tree.avi"], sample_fps=1)
    (tree,) = ensure_categories(session, project_id=report.project_id, names=["tree"])
    batch = begin_change(session, project_id=report.project_id, actor="t", description="t")
    create_track(session, batch=batch, video_id=report.videos[0].video_id, category_id=tree.id)
    session.commit()
    assert delete_project(session, project_id=report.project_id)
    assert session.exec(select(Video)).all() == [] and session.exec(select(Track)).all() == []
    assert session.exec(select(Project)).all() == [] and session.exec(select(Image)).all() == []
