"""COCO-video and MOTChallenge exports of a project with a real clip, its tracks, and a photo."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import Session, col, select

from store.annotations import create_annotation
from store.categories import ensure_categories
from store.coco_video_export import export_coco_video
from store.history import begin_change
from store.ingest import ingest
from store.masks import rle_from_mask
from store.models import Image, Project
from store.mot_export import export_mot, sequence_name
from store.tracks import create_track


@pytest.fixture
def project(session: Session, tmp_path: Path, clips, photos) -> dict:
    """tree.avi at 1 fps (30 frames) with two tracks on frames 0-4 and 2-6, and bus.jpg with a box."""
    home = tmp_path / "home"
    report = ingest(session, home=home, project_name="p", source=clips["tree.avi"], sample_fps=1)
    ingest(session, home=home, project_name="p", source=photos["bus.jpg"].parent)
    project = session.exec(select(Project)).one()
    tree, person = ensure_categories(session, project_id=project.id, names=["tree", "person"])
    video_id = report.videos[0].video_id
    frames = list(
        session.exec(select(Image).where(Image.video_id == video_id).order_by(col(Image.frame_index)))
    )
    batch = begin_change(session, project_id=project.id, actor="t", description="fixture")
    a = create_track(session, batch=batch, video_id=video_id, category_id=tree.id, name="tree 1")
    b = create_track(session, batch=batch, video_id=video_id, category_id=person.id, name="person 2")
    for track, category, span, x0 in ((a, tree.id, range(0, 5), 20), (b, person.id, range(2, 7), 200)):
        for i in span:
            mask = np.zeros((240, 320), dtype=bool)
            mask[50 : 50 + 60, x0 + 4 * i : x0 + 4 * i + 30] = True
            create_annotation(
                session,
                batch=batch,
                image_id=frames[i].id,
                category_id=category,
                mask=rle_from_mask(mask),
                score=0.8,
                track_id=track.id,
            )
    bus = session.exec(select(Image).where(Image.file_name == "bus.jpg")).one()
    create_annotation(session, batch=batch, image_id=bus.id, category_id=person.id, bbox=[10, 10, 50, 100])
    session.commit()
    return {"id": project.id, "tracks": (a.id, b.id), "video": video_id, "frames": frames, "bus": bus.id}


def test_coco_video_loads_in_pycocotools_as_plain_coco_and_carries_tracks(session, project, tmp_path) -> None:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    out = tmp_path / "traffic.json"
    report = export_coco_video(session, project_id=project["id"], out_path=out)
    assert (report.videos, report.tracks, report.tracked_annotations) == (1, 2, 10)
    coco = COCO(str(out))
    assert len(coco.getAnnIds()) == 11 and len(coco.getImgIds()) == 30 + 2  # frames + bus + zidane
    ann = coco.loadAnns(coco.getAnnIds(imgIds=[project["frames"][3].id]))
    assert sorted(a["track_id"] for a in ann) == sorted(project["tracks"])
    assert all(a["instance_id"] == a["track_id"] and a["video_id"] == project["video"] for a in ann)
    assert coco.annToMask(ann[0]).sum() == 60 * 30
    frame = coco.loadImgs([project["frames"][3].id])[0]
    assert (frame["video_id"], frame["frame_id"]) == (project["video"], project["frames"][3].frame_index)
    bus = coco.loadImgs([project["bus"]])[0]
    assert (
        "video_id" not in bus and "track_id" not in coco.loadAnns(coco.getAnnIds(imgIds=[project["bus"]]))[0]
    )
    data = json.loads(out.read_text())
    (video,) = data["videos"]
    assert (video["name"], video["width"], video["height"]) == ("tree.avi", 320, 240)
    names = {c["id"]: c["name"] for c in data["categories"]}
    assert [(t["name"], names[t["category_id"]]) for t in data["tracks"]] == [
        ("tree 1", "tree"),
        ("person 2", "person"),
    ]
    # still plain COCO for evaluation: the file scored against itself is perfect
    evaluation = COCOeval(coco, coco.loadRes(_as_results(data)), "segm")
    evaluation.evaluate(), evaluation.accumulate(), evaluation.summarize()
    assert evaluation.stats[0] == pytest.approx(1.0)


def _as_results(data: dict) -> list[dict]:
    return [{**a, "score": a.get("score", 1.0)} for a in data["annotations"]]


def test_mot_file_parses_with_the_mot_column_layout(session, project, tmp_path) -> None:
    report = export_mot(session, project_id=project["id"], out_dir=tmp_path / "mot")
    assert report.sequences == {"tree.txt": project["video"]} and (report.lines, report.tracks) == (10, 2)
    table = np.loadtxt(tmp_path / "mot" / "tree.txt", delimiter=",", ndmin=2)
    assert table.shape == (10, 10)
    frame, ids, x, y, w, h, conf = (table[:, i] for i in range(7))
    first = project["frames"][0].frame_index + 1
    a, b = project["tracks"]
    assert frame[0] == first and list(ids[:2]) == [a, a] and set(ids) == {a, b}
    assert (np.diff(frame) >= 0).all() and (w == 30).all() and (h == 60).all() and (conf == 0.8).all()
    assert (table[:, 7:] == -1).all() and x[0] == 20 and y[0] == 50
    ini = (tmp_path / "mot" / "tree.ini").read_text()
    assert "seqLength=68" in ini and "imWidth=320" in ini


def test_mot_needs_a_video(session: Session) -> None:
    from store.projects import create_project

    empty = create_project(session, name="photos only")
    with pytest.raises(ValueError, match="has no videos"):
        export_mot(session, project_id=empty.id, out_dir=Path("/nonexistent"))


@pytest.mark.parametrize(
    ("name", "expected"), [("tree.avi", "tree"), ("clips/street walk.mp4", "street_walk"), ("..mp4", "video")]
)
def test_sequence_names_are_safe(name: str, expected: str) -> None:
    assert sequence_name(name) == expected


def test_coco_video_fidelity_report_covers_each_video(session, project, tmp_path) -> None:
    out = tmp_path / "traffic.json"
    report = export_coco_video(session, project_id=project["id"], out_path=out)
    (video,) = report.fidelity_by_video
    assert (video["video_id"], video["name"], video["instances"]) == (project["video"], "tree.avi", 10)
    assert video["mean"] == pytest.approx(1.0) and video["worst"] == pytest.approx(1.0)
    written = json.loads((tmp_path / "traffic.fidelity.json").read_text())
    assert written["summary"]["videos"] == report.fidelity_by_video
    assert written["summary"]["instances"] == 10  # the photo's box has no mask to compare with
    assert len(written["instances"]) == 10


def test_yolo_per_frame_with_tracks_loads_in_ultralytics(session, project, tmp_path) -> None:
    from tools.backends.torchvision_compat import ensure_torchvision

    ensure_torchvision()
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    from store.yolo_video_export import export_yolo_video

    home = tmp_path / "home"
    report = export_yolo_video(session, project_id=project["id"], out_dir=tmp_path / "yolo", images_root=home)
    assert (report.videos, report.frames, report.tracks) == (1, 30, 2)
    frame = project["frames"][3]
    stem = frame.file_name.rsplit(".", 1)[0]
    assert stem.startswith("tree.avi/frame_")
    lines = (tmp_path / "yolo" / "labels" / f"{stem}.txt").read_text().splitlines()
    assert len(lines) == 2 and (tmp_path / "yolo" / "images" / frame.file_name).is_file()
    videos = json.loads(Path(report.videos_json).read_text())["videos"]
    entry = next(f for f in videos[0]["frames"] if f["image_id"] == frame.id)
    assert entry["label"] == f"labels/{stem}.txt" and entry["track_ids"] == list(project["tracks"])
    assert [f["frame_index"] for f in videos[0]["frames"]] == [f.frame_index for f in project["frames"]]
    data = check_det_dataset(report.yolo.data_yaml, autodownload=False)
    dataset = YOLODataset(img_path=data["train"], data=data, task="segment", augment=False, imgsz=320)
    assert len(dataset.labels) == 30 + 2 and sum(len(label["cls"]) for label in dataset.labels) == 11
