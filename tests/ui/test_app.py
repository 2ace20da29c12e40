"""The UI's handlers called as functions over a real store (temp SQLite, the two real photos)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pytest
from pycocotools.coco import COCO

from agent.events import AssistantText, Final, ToolCall, ToolResult
from store import (
    create_job,
    get_finding,
    get_project_by_name,
    new_session,
    open_engine,
    query_annotations,
    upsert_finding,
)
from store.masks import rle_from_mask
from tools.backends.base import Detections
from tools.backends.vocab import UnknownLabel
from ui import actions, views
from ui.app import active_job, build_ui
from ui.canvas import canvas_html, gesture
from ui.services import NO_AGENT_HINT, UIServices
from ui.tabs import analytics, review
from ui.tabs.chat import run_chat
from ui.tabs.export import export
from ui.tabs.label import hit


class KnownLabels:
    """Stands in for the detector where only its label check matters (the job itself never runs)."""

    model_id = "fake"

    def detect(self, image: np.ndarray, prompts: list[str], threshold: float) -> Detections:
        unknown = [p for p in prompts if p not in ("person", "bus", "tie")]
        if unknown:
            raise UnknownLabel(f"cannot detect {unknown}")
        return Detections.empty()


@dataclass
class Backends:
    detector: Any = field(default_factory=KnownLabels)
    segmenter: Any = None

    def __post_init__(self) -> None:
        from tools.backends.lite_segmenter import LiteSegmenter

        self.segmenter = LiteSegmenter(None)  # GrabCut: real segmentation, no weights


@dataclass
class Jobs:
    """Records what the UI enqueues; the job runner itself is tested in tests/server."""

    engine: Any
    enqueued: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)

    def enqueue(self, project_id: int, kind: str, params: dict[str, Any]) -> int:
        self.enqueued.append((project_id, kind, params))
        with new_session(self.engine) as session:
            job = create_job(
                session, project_id=project_id, kind=kind, params=params, total=len(params["image_ids"])
            )
        return job.id or 0

    def cancel(self, job_id: int) -> None:
        raise ValueError(f"job {job_id} is done")


@pytest.fixture
def services(tmp_path: Path, models_dir: Path) -> UIServices:
    engine = open_engine(tmp_path / "home" / "labelwright.db")
    return UIServices(
        engine=engine,
        home=tmp_path / "home",
        models_dir=models_dir,
        backends_factory=Backends,
        jobs=Jobs(engine),
    )


@pytest.fixture
def project(services: UIServices, photo_zip: Path) -> int:
    project_id, report = actions.upload_zip(services, "street", photo_zip)
    assert report.startswith("**2 added**, 0 duplicates, 0 skipped")
    return project_id


def _image_ids(services: UIServices, project_id: int) -> list[int]:
    with new_session(services.engine) as session:
        return views.image_strip(services.home, session, project_id)[1]


def _box_annotation(services: UIServices, project_id: int, image_id: int, label: str) -> int:
    ann_id, _ = actions.draw_shape(
        services, project_id, image_id, label, annotation_id=None, box=[50, 400, 250, 900]
    )
    return ann_id


def test_build_ui_lays_out_every_part(services: UIServices) -> None:
    demo = build_ui(services)
    assert isinstance(demo, gr.Blocks)
    ids = {c.get("props", {}).get("elem_id") for c in demo.config["components"]}
    expected = {"lw-project", "lw-upload", "lw-classes", "lw-label", "lw-progress", "lw-chat", "lw-canvas"}
    assert (
        expected | {"lw-annotations", "lw-strip", "lw-undo", "lw-totals", "lw-findings", "lw-export"} <= ids
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("person,bus,tie", ["person", "bus", "tie"]),
        (" person ,, bus , person", ["person", "bus"]),
        (" , ", []),
    ],
)
def test_parse_classes(text: str, expected: list[str]) -> None:
    assert actions.parse_classes(text) == expected


def test_save_classes_refuses_an_empty_list(services: UIServices, project: int) -> None:
    assert actions.save_classes(services, project, "person, bus") == ["person", "bus"]
    with pytest.raises(ValueError, match="separated by commas"):
        actions.save_classes(services, project, " , ")


def test_upload_again_reports_duplicates(services: UIServices, project: int, photo_zip: Path) -> None:
    _, report = actions.upload_zip(services, "street", photo_zip)
    assert report.startswith("**0 added**, 2 duplicates") and "`bus.jpg` is the same as `bus.jpg`" in report


def test_label_button_enqueues_the_auto_label_job(services: UIServices, project: int) -> None:
    job_id, message = actions.start_label(services, project, "person, bus", 0.4)
    ((project_id, kind, params),) = services.jobs.enqueued  # type: ignore[attr-defined]
    assert (project_id, kind, params["classes"], params["threshold"]) == (
        project,
        "auto_label",
        ["person", "bus"],
        0.4,
    )
    assert len(params["image_ids"]) == 2 and f"started job {job_id}" in message
    line, ended = actions.job_progress(services, job_id)
    assert "queued" in line and "0/2" in line and not ended
    assert active_job(services, project) == job_id
    with pytest.raises(actions.ERRORS, match="cannot detect"):
        actions.start_label(services, project, "unicorn", 0.4)


def test_edits_go_through_history_and_undo(services: UIServices, project: int) -> None:
    bus_image, _ = _image_ids(services, project)
    ann = _box_annotation(services, project, bus_image, "person")
    assert actions.relabel_annotation(services, project, ann, "bus") == f"#{ann} is now bus"
    assert actions.set_annotation_status(services, project, ann, "rejected") == f"#{ann} rejected"
    assert actions.delete(services, project, ann) == f"deleted #{ann}"
    with new_session(services.engine) as session:
        assert query_annotations(session, project_id=project) == []
    assert actions.undo_last(services, project) == f"undone: delete #{ann}"
    with new_session(services.engine) as session:
        (row,) = query_annotations(session, project_id=project)
        choices = views.annotation_choices(session, bus_image)
    assert (row.id, row.status.value) == (ann, "rejected")
    assert choices == [(f"#{ann} bus (rejected)", ann)]


def test_polygon_replaces_the_selected_shape_and_hit_finds_it(services: UIServices, project: int) -> None:
    bus_image, _ = _image_ids(services, project)
    ann = _box_annotation(services, project, bus_image, "person")
    triangle = [[100.0, 500.0], [300.0, 500.0], [100.0, 700.0]]
    assert actions.draw_shape(services, project, bus_image, "", annotation_id=ann, polygon=triangle)[0] == ann
    with new_session(services.engine) as session:
        (row,) = query_annotations(session, project_id=project)
    assert row.mask is not None and 19_000 < row.area < 21_000  # half of 200 x 200
    assert hit(services, bus_image, 120, 520) == ann
    assert hit(services, bus_image, 290, 690) is None  # inside the box, outside the triangle
    with pytest.raises(ValueError, match="at least 3 points"):
        actions.draw_shape(services, project, bus_image, "", annotation_id=ann, polygon=triangle[:2])


def test_segment_a_dragged_box_with_the_real_grabcut(services: UIServices, project: int) -> None:
    bus_image, _ = _image_ids(services, project)
    ann, message = actions.segment_gesture(
        services, project, bus_image, "bus", gesture({"kind": "box", "box": [20, 220, 800, 760]})
    )
    assert message.startswith(f"saved #{ann} bus")
    with new_session(services.engine) as session:
        (row,) = query_annotations(session, project_id=project)
        html = views.canvas(services.home, session, bus_image, selected=ann, polygon=[[1, 2], [3, 4], [5, 6]])
    assert row.tool == "segment" and row.area > 100_000
    assert "data:image/jpeg;base64," in html and "data-w='810' data-h='1080'" in html and "<polygon" in html
    with pytest.raises(ValueError, match="pick the class"):
        actions.segment_gesture(services, project, bus_image, " ", gesture({"kind": "point", "x": 5, "y": 5}))


@pytest.mark.parametrize("bad", [None, {"kind": "drag"}, {"kind": "box", "box": [1, 2, 3]}])
def test_gesture_refuses_malformed_events(bad: Any) -> None:
    with pytest.raises(ValueError):
        gesture(bad)


def test_empty_canvas_says_what_to_do() -> None:
    assert "Pick an image" in canvas_html(None)


def test_chat_without_an_agent_explains_how_to_start_one(services: UIServices, project: int) -> None:
    *_, history = run_chat(services, project, "label every pedestrian", [])
    assert history == [
        {"role": "user", "content": "label every pedestrian"},
        {"role": "assistant", "content": NO_AGENT_HINT},
    ]


def test_chat_shows_tool_steps_collapsed(services: UIServices, project: int) -> None:
    def chat(project_id: int, message: str, on_event: Any) -> None:
        on_event(AssistantText("Labeling people."))
        on_event(ToolCall("auto_label", {"classes": ["person"]}))
        on_event(ToolResult("auto_label", "started job 1: labeling person on 2 images"))
        on_event(ToolCall("count", {"label": "unicorn"}))
        on_event(ToolResult("count", "error: unknown class", error=True))
        on_event(Final("Started job 1.", steps=3))

    services.chat = chat
    *_, history = run_chat(services, project, "label every pedestrian", [])
    steps = [m for m in history if "metadata" in m]
    assert [m["metadata"]["title"] for m in steps] == [
        '🛠 auto_label {"classes": ["person"]}',
        '❌ count {"label": "unicorn"}',
    ]
    assert steps[0]["content"] == "started job 1: labeling person on 2 images"
    assert all(m["metadata"]["status"] == "done" for m in steps)
    assert history[-1] == {"role": "assistant", "content": "Started job 1."}


def test_analytics_counts_and_histogram(services: UIServices, project: int) -> None:
    bus_image, zidane = _image_ids(services, project)
    _box_annotation(services, project, bus_image, "person")
    mask = np.zeros((720, 1280), bool)
    mask[100:400, 200:500] = True
    with new_session(services.engine) as session:
        from store import begin_change, create_annotation, ensure_categories

        (tie,) = ensure_categories(session, project_id=project, names=["tie"])
        batch = begin_change(session, project_id=project, actor="test", description="add")
        create_annotation(
            session, batch=batch, image_id=zidane, category_id=tie.id, mask=rle_from_mask(mask), score=0.87
        )
        session.commit()
        counts = analytics.class_counts(session, project)
        hist = analytics.confidence_histogram(session, project)
        summary = analytics.totals(session, project)
    assert set(counts[counts["count"] > 0].itertuples(index=False, name=None)) == {
        ("person", "accepted", 1),
        ("tie", "proposed", 1),
    }
    assert list(hist.itertuples(index=False, name=None)) == [("tie", "0.8-0.9", 1)]
    assert summary.startswith("**2** images (2 annotated, 0 to do) · **2** annotations")


def test_review_actions_change_the_annotation_and_close_the_finding(
    services: UIServices, project: int
) -> None:
    bus_image, _ = _image_ids(services, project)
    ann = _box_annotation(services, project, bus_image, "person")
    with new_session(services.engine) as session:
        finding = upsert_finding(
            session,
            project_id=project,
            kind="low_score",
            fingerprint="f1",
            image_id=bus_image,
            annotation_id=ann,
        )
        session.commit()  # repositories flush; the caller commits
    table = review.findings_table(services, project, "open")
    assert list(table["id"]) == [finding.id] and list(table["kind"]) == ["low_score"]
    assert review.preview(services, finding.id) is not None
    assert review.resolve(services, project, finding.id or 0, "rejected") == (
        f"finding {finding.id}: rejected the annotation"
    )
    with new_session(services.engine) as session:
        assert get_finding(session, finding_id=finding.id or 0).status == "closed"  # type: ignore[union-attr]
        (row,) = query_annotations(session, project_id=project)
    assert row.status.value == "rejected"
    assert review.findings_table(services, project, "open").empty


@pytest.mark.parametrize("fmt", ["COCO", "YOLO", "Mask PNGs"])
def test_export_writes_a_download_and_a_report(services: UIServices, project: int, fmt: str) -> None:
    bus_image, _ = _image_ids(services, project)
    _box_annotation(services, project, bus_image, "person")
    path, report = export(services, project, fmt, ["accepted", "proposed"])
    assert path.is_file() and path.is_relative_to(services.home / "exports")
    if fmt == "COCO":
        coco = COCO(str(path))
        assert len(coco.getAnnIds()) == 1 and report["annotations"] == 1
        assert json.loads(Path(report["fidelity_path"]).read_text())
    else:
        assert path.suffix == ".zip" and report["images"] == 2


def test_export_refuses_bad_choices(services: UIServices, project: int) -> None:
    with pytest.raises(ValueError, match="at least one status"):
        export(services, project, "COCO", [])
    with pytest.raises(ValueError, match="format must be one of"):
        export(services, project, "VOC", ["accepted"])


def test_project_is_found_by_name(services: UIServices, project: int) -> None:
    with new_session(services.engine) as session:
        assert get_project_by_name(session, name="street").id == project  # type: ignore[union-attr]
        assert views.project_choices(session) == [("street", project)]
