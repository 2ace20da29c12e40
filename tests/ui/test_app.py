"""The UI's handlers called as functions over a real store (temp SQLite, the two real photos),
as people of each role: the operations decide, the UI shows the refusal and changes nothing."""

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
from ops.caller import Caller, local_caller
from ops.errors import Forbidden, Invalid, Unauthenticated
from store import get_finding, new_session, open_engine, query_annotations, upsert_finding
from store.errors import StaleWriteError
from store.masks import rle_from_mask
from store.users import create_user, set_membership
from tools.backends.base import Detections
from tools.backends.vocab import UnknownLabel
from tools.registry import ToolError
from ui import actions, live, views
from ui.app import active_job, build_ui
from ui.canvas import canvas_html, gesture
from ui.services import NO_AGENT_HINT, UIServices
from ui.shared import Shared
from ui.tabs import analytics, review
from ui.tabs.chat import run_chat
from ui.tabs.export import export
from ui.tabs.label import hit

ADMIN = local_caller(via="ui")


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


@pytest.fixture
def services(tmp_path: Path, models_dir: Path) -> UIServices:
    engine = open_engine(tmp_path / "home" / "labelwright.db")
    backends = Backends()
    return UIServices(engine=engine, home=tmp_path / "home", models_dir=models_dir, backends=lambda: backends)


@pytest.fixture
def project(services: UIServices, photo_zip: Path) -> int:
    project_id, message = actions.create_project(services, ADMIN, "street")
    assert message == "created project street"
    report = actions.upload_zip(services, ADMIN, project_id, photo_zip)
    assert report.startswith("**2 added**, 0 duplicates, 0 skipped")
    return project_id


@pytest.fixture
def people(services: UIServices, project: int) -> dict[str, Caller]:
    """A viewer, an annotator and a reviewer of the project, signed in to the UI."""
    out = {}
    with new_session(services.engine) as session:
        for name, role in (("vic", "viewer"), ("ann", "annotator"), ("rev", "reviewer")):
            user = create_user(session, username=name)
            set_membership(session, user_id=user.id or 0, project_id=project, role=role)
            out[role] = Caller(name, user.id, False, via="ui", credential="session")
        session.commit()
    return out


def _image_ids(services: UIServices, project_id: int) -> list[int]:
    with views.reading(services, ADMIN, project_id) as session:
        return views.image_strip(services.home, session, project_id)[1]


def _shown(services: UIServices, caller: Caller, project_id: int, image_id: int) -> dict[int, int]:
    """The annotation list as the page draws it: id -> the version an edit will name."""
    with views.reading(services, caller, project_id) as session:
        choices = views.annotation_choices(session, image_id)
    return dict(views.parse_choice(value) for _, value in choices)  # type: ignore[misc]


def _box(services: UIServices, caller: Caller, project_id: int, image_id: int, label: str) -> int:
    ann_id, message = actions.draw_shape(
        services,
        caller,
        project_id,
        image_id,
        label,
        annotation_id=None,
        version=None,
        box=[50, 400, 250, 900],
    )
    assert message == f"added #{ann_id} {label}"
    return ann_id


def _rows(services: UIServices, project_id: int) -> list[Any]:
    with new_session(services.engine) as session:
        return query_annotations(session, project_id=project_id)


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


def test_save_classes_refuses_an_empty_list_and_a_viewer(
    services: UIServices, project: int, people: dict[str, Caller]
) -> None:
    assert actions.save_classes(services, people["annotator"], project, "person, bus") == ["person", "bus"]
    with pytest.raises(ValueError, match="separated by commas"):
        actions.save_classes(services, ADMIN, project, " , ")
    with pytest.raises(Forbidden, match=r"needs the annotator role .*you \(vic\) are viewer"):
        actions.save_classes(services, people["viewer"], project, "tie")


def test_upload_again_reports_duplicates(services: UIServices, project: int, photo_zip: Path) -> None:
    report = actions.upload_zip(services, ADMIN, project, photo_zip)
    assert report.startswith("**0 added**, 2 duplicates") and "`bus.jpg` is the same as `bus.jpg`" in report


def test_project_list_shows_only_the_callers_projects(
    services: UIServices, project: int, people: dict[str, Caller]
) -> None:
    other, _ = actions.create_project(services, ADMIN, "private")
    assert actions.project_choices(services, ADMIN) == [("private", other), ("street", project)]
    assert actions.project_choices(services, people["viewer"]) == [("street", project)]
    with pytest.raises(Forbidden, match="not a member"):
        views.reading(services, people["viewer"], other).__enter__()
    with pytest.raises(Unauthenticated):
        actions.project_choices(services, None)  # a network bind, nobody signed in


def test_a_viewer_is_refused_every_change_and_nothing_is_written(
    services: UIServices, project: int, people: dict[str, Caller]
) -> None:
    bus_image, _ = _image_ids(services, project)
    ann = _box(services, ADMIN, project, bus_image, "person")
    version = _shown(services, people["viewer"], project, bus_image)[ann]
    viewer = people["viewer"]
    refusals = [
        lambda: actions.create_project(services, viewer, "mine"),
        lambda: _box(services, viewer, project, bus_image, "person"),
        lambda: actions.relabel_annotation(services, viewer, project, ann, version, "bus"),
        lambda: actions.set_annotation_status(services, viewer, project, ann, version, "accepted"),
        lambda: actions.set_annotation_status(services, viewer, project, ann, version, "rejected"),
        lambda: actions.delete(services, viewer, project, ann, version),
        lambda: actions.undo_last(services, viewer, project),
        lambda: actions.start_label(services, viewer, project, "person", 0.3),
    ]
    for attempt in refusals:
        with pytest.raises(Forbidden) as refused:
            attempt()
        assert actions.refusal(refused.value).startswith("⚠️ ") and "vic" in str(refused.value)
    (row,) = _rows(services, project)
    assert (row.id, row.version, row.status.value) == (ann, version, "proposed")
    assert actions.project_choices(services, ADMIN) == [("street", project)]


def test_an_annotator_edits_and_undoes_but_cannot_accept_and_a_reviewer_can(
    services: UIServices, project: int, people: dict[str, Caller]
) -> None:
    annotator, reviewer = people["annotator"], people["reviewer"]
    bus_image, _ = _image_ids(services, project)
    ann = _box(services, annotator, project, bus_image, "person")
    version = _shown(services, annotator, project, bus_image)[ann]
    assert actions.relabel_annotation(services, annotator, project, ann, version, "bus").startswith(
        f"#{ann} is now bus"
    )
    version = _shown(services, annotator, project, bus_image)[ann]
    with pytest.raises(Forbidden, match=r"needs the reviewer role .*you \(ann\) are annotator"):
        actions.set_annotation_status(services, annotator, project, ann, version, "accepted")
    assert actions.undo_last(services, annotator, project).startswith(f"undone: edit #{ann}")
    version = _shown(services, reviewer, project, bus_image)[ann]
    assert actions.set_annotation_status(services, reviewer, project, ann, version, "accepted") == (
        f"#{ann} accepted"
    )
    (row,) = _rows(services, project)
    assert (row.status.value, row.author) == ("accepted", "ann")
    from ops.history import list_changes

    actors = [(b.actor, b.via) for b in reversed(list_changes(services.env, reviewer, project))]
    assert actors[-1] == ("rev", "ui") and ("ann", "ui") in actors


def test_a_stale_edit_is_refused_with_who_changed_it(
    services: UIServices, project: int, people: dict[str, Caller]
) -> None:
    annotator, reviewer = people["annotator"], people["reviewer"]
    bus_image, _ = _image_ids(services, project)
    ann = _box(services, annotator, project, bus_image, "person")
    seen_by_annotator = _shown(services, annotator, project, bus_image)[ann]
    actions.set_annotation_status(services, reviewer, project, ann, seen_by_annotator, "rejected")
    with pytest.raises(StaleWriteError) as stale:
        actions.relabel_annotation(services, annotator, project, ann, seen_by_annotator, "bus")
    assert "changed by 'rev'" in actions.refusal(stale.value)
    (row,) = _rows(services, project)
    assert row.status.value == "rejected" and row.version == seen_by_annotator + 1


def test_label_button_queues_the_auto_label_job(
    services: UIServices, project: int, people: dict[str, Caller]
) -> None:
    job_id, message = actions.start_label(services, people["annotator"], project, "person, bus", 0.4)
    assert message == f"started job {job_id}: labeling person, bus on 2 images"
    line, ended = actions.job_progress(services, people["viewer"], project, job_id)
    assert "queued" in line and "0/2" in line and not ended
    assert active_job(services, people["viewer"], project) == job_id
    with new_session(services.engine) as session:
        from store import get_job

        job = get_job(session, job_id=job_id)
    assert job is not None and job.params["requested_by"] == "ann" and job.params["via"] == "ui"
    with pytest.raises(Invalid, match="cannot detect"):
        actions.start_label(services, people["annotator"], project, "unicorn", 0.4)
    assert actions.cancel_job(services, people["annotator"], project, job_id) == f"cancelled job {job_id}"
    assert active_job(services, ADMIN, project) is None


def test_edits_go_through_history_and_undo(services: UIServices, project: int) -> None:
    bus_image, _ = _image_ids(services, project)
    ann = _box(services, ADMIN, project, bus_image, "person")
    actions.relabel_annotation(
        services, ADMIN, project, ann, _shown(services, ADMIN, project, bus_image)[ann], "bus"
    )
    version = _shown(services, ADMIN, project, bus_image)[ann]
    assert (
        actions.set_annotation_status(services, ADMIN, project, ann, version, "rejected")
        == f"#{ann} rejected"
    )
    assert actions.delete(services, ADMIN, project, ann, version + 1) == f"deleted #{ann}"
    assert _rows(services, project) == []
    assert actions.undo_last(services, ADMIN, project) == f"undone: delete #{ann}"
    (row,) = _rows(services, project)
    assert (row.id, row.status.value) == (ann, "rejected")
    assert _shown(services, ADMIN, project, bus_image) == {ann: row.version}


def test_polygon_replaces_the_selected_shape_and_hit_finds_it(services: UIServices, project: int) -> None:
    bus_image, _ = _image_ids(services, project)
    ann = _box(services, ADMIN, project, bus_image, "person")
    version = _shown(services, ADMIN, project, bus_image)[ann]
    triangle = [[100.0, 500.0], [300.0, 500.0], [100.0, 700.0]]
    drawn = actions.draw_shape(
        services, ADMIN, project, bus_image, "", annotation_id=ann, version=version, polygon=triangle
    )
    assert drawn == (ann, f"redrew #{ann}")
    (row,) = _rows(services, project)
    assert row.mask is not None and 19_000 < row.area < 21_000  # half of 200 x 200
    assert hit(services, ADMIN, project, bus_image, 120, 520) == ann
    assert hit(services, ADMIN, project, bus_image, 290, 690) is None  # inside the box, outside the triangle
    with pytest.raises(ValueError, match="at least 3 points"):
        actions.draw_shape(
            services,
            ADMIN,
            project,
            bus_image,
            "",
            annotation_id=ann,
            version=row.version,
            polygon=triangle[:2],
        )


def test_segment_a_dragged_box_with_the_real_grabcut(
    services: UIServices, project: int, people: dict[str, Caller]
) -> None:
    bus_image, _ = _image_ids(services, project)
    ann, message = actions.segment_gesture(
        services, people["annotator"], project, bus_image, "bus",
        gesture({"kind": "box", "box": [20, 220, 800, 760]}),
    )  # fmt: skip
    assert message.startswith(f"saved #{ann} bus")
    (row,) = _rows(services, project)
    with views.reading(services, ADMIN, project) as session:
        html = views.canvas(services.home, session, bus_image, selected=ann, polygon=[[1, 2], [3, 4], [5, 6]])
    assert row.tool == "segment" and row.area > 100_000 and row.author == "ann"
    assert "data:image/jpeg;base64," in html and "data-w='810' data-h='1080'" in html and "<polygon" in html
    with pytest.raises(ValueError, match="pick the class"):
        actions.segment_gesture(
            services, ADMIN, project, bus_image, " ", gesture({"kind": "point", "x": 5, "y": 5})
        )
    with pytest.raises(Unauthenticated):
        actions.segment_gesture(
            services, None, project, bus_image, "bus", gesture({"kind": "point", "x": 5, "y": 5})
        )


def test_a_viewer_cannot_segment(services: UIServices, project: int, people: dict[str, Caller]) -> None:
    bus_image, _ = _image_ids(services, project)
    box = gesture({"kind": "box", "box": [20, 220, 800, 760]})
    with pytest.raises(ToolError, match="needs the annotator role"):
        actions.segment_gesture(services, people["viewer"], project, bus_image, "bus", box)
    assert _rows(services, project) == []


@pytest.mark.parametrize("bad", [None, {"kind": "drag"}, {"kind": "box", "box": [1, 2, 3]}])
def test_gesture_refuses_malformed_events(bad: Any) -> None:
    with pytest.raises(ValueError):
        gesture(bad)


def test_empty_canvas_says_what_to_do() -> None:
    assert "Pick an image" in canvas_html(None)


def test_the_page_follows_the_project_events(
    services: UIServices, project: int, people: dict[str, Caller]
) -> None:
    """What the 0.5 s timer asks: nothing moved, nothing to draw; an edit elsewhere, redraw."""
    bus_image, _ = _image_ids(services, project)
    last = live.Seen(live.latest(services, project))
    assert live.look(services, people["viewer"], project, last, None) == (last, None, None)
    ann = _box(services, people["annotator"], project, bus_image, "person")  # another browser
    now, line, job = live.look(services, people["viewer"], project, last, None)
    assert now.event > last.event and (line, job) == (None, None)
    assert ann in _shown(services, people["viewer"], project, bus_image)
    job_id, _ = actions.start_label(services, people["annotator"], project, "person", 0.3)  # e.g. the agent
    later, line, job = live.look(services, people["viewer"], project, now, None)
    assert job == job_id and later.job == (job_id, "queued", 0) and line is not None and "queued" in line


def test_chat_without_an_agent_explains_how_to_start_one(services: UIServices, project: int) -> None:
    *_, history = run_chat(services, ADMIN, project, "label every pedestrian", [])
    assert history == [
        {"role": "user", "content": "label every pedestrian"},
        {"role": "assistant", "content": NO_AGENT_HINT},
    ]
    *_, history = run_chat(services, None, project, "hello", [])
    assert "Sign in" in history[-1]["content"]


def test_chat_shows_tool_steps_collapsed_and_is_the_callers(
    services: UIServices, project: int, people: dict[str, Caller]
) -> None:
    asked: list[tuple[str, int]] = []

    def chat(caller: Caller, project_id: int, message: str, on_event: Any) -> None:
        asked.append((caller.username, project_id))
        on_event(AssistantText("Labeling people."))
        on_event(ToolCall("auto_label", {"classes": ["person"]}))
        on_event(ToolResult("auto_label", "started job 1: labeling person on 2 images"))
        on_event(ToolCall("count", {"label": "unicorn"}))
        on_event(ToolResult("count", "error: unknown class", error=True))
        on_event(Final("Started job 1.", steps=3))

    services.chat = chat
    *_, history = run_chat(services, people["annotator"], project, "label every pedestrian", [])
    steps = [m for m in history if "metadata" in m]
    assert [m["metadata"]["title"] for m in steps] == [
        '🛠 auto_label {"classes": ["person"]}',
        '❌ count {"label": "unicorn"}',
    ]
    assert steps[0]["content"] == "started job 1: labeling person on 2 images"
    assert all(m["metadata"]["status"] == "done" for m in steps)
    assert history[-1] == {"role": "assistant", "content": "Started job 1."}
    assert asked == [("ann", project)]


def test_analytics_counts_and_histogram(services: UIServices, project: int) -> None:
    bus_image, zidane = _image_ids(services, project)
    _box(services, ADMIN, project, bus_image, "person")
    mask = np.zeros((720, 1280), bool)
    mask[100:400, 200:500] = True
    from ops.annotations import NewAnnotation, create

    create(
        services.env, ADMIN, project, image_id=zidane,
        items=[NewAnnotation(label="tie", mask=rle_from_mask(mask), score=0.87)],
    )  # fmt: skip
    with views.reading(services, ADMIN, project, "project.read") as session:
        counts = analytics.class_counts(session, project)
        hist = analytics.confidence_histogram(session, project)
        summary = analytics.totals(session, project)
    assert set(counts[counts["count"] > 0].itertuples(index=False, name=None)) == {
        ("person", "proposed", 1),
        ("tie", "proposed", 1),
    }
    assert list(hist.itertuples(index=False, name=None)) == [("tie", "0.8-0.9", 1)]
    assert summary.startswith("**2** images (2 annotated, 0 to do) · **2** annotations")


def test_analytics_precision_recall_curve_per_class(services: UIServices, project: int) -> None:
    from ops.annotations import NewAnnotation, create

    _, zidane = _image_ids(services, project)
    assert analytics.pr_curves(services.env, ADMIN, project).empty  # nothing reviewed yet
    items = [  # 40 reviewed ties: the 30 scoring 0.25 and up right, the 10 below wrong
        NewAnnotation(label="tie", bbox=[10.0 + 20 * i, 10.0, 15.0, 15.0], score=(i + 0.5) / 40,
                      status="accepted" if i >= 10 else "rejected")
        for i in range(40)
    ]  # fmt: skip
    create(services.env, ADMIN, project, image_id=zidane, items=items)
    curve = analytics.pr_curves(services.env, ADMIN, project)
    assert set(curve["class"]) == {"tie"} and len(curve) > 5
    first, last = curve.iloc[0], curve.iloc[-1]  # highest threshold first
    assert first["precision"] == 1.0 and first["recall"] < 0.2 and first["low"] < 1.0
    assert last["recall"] == 1.0 and abs(last["precision"] - 0.75) < 1e-9
    assert (curve["low"] <= curve["precision"]).all() and (curve["precision"] <= curve["high"]).all()
    with gr.Blocks():  # what the tab shows
        state = gr.State()
        shared = Shared(state, state, state, state, gr.Markdown(), gr.Textbox())
        load, outputs = analytics.build(services, shared)
    shown = load(project, None)
    assert len(shown) == len(outputs) and shown[3] == "" and shown[4].value is not None


def test_review_actions_change_the_annotation_and_close_the_finding(
    services: UIServices, project: int, people: dict[str, Caller]
) -> None:
    bus_image, _ = _image_ids(services, project)
    ann = _box(services, ADMIN, project, bus_image, "person")
    with new_session(services.engine) as session:
        finding = upsert_finding(
            session,
            project_id=project,
            kind="low_score",
            fingerprint="f1",
            image_id=bus_image,
            annotation_id=ann,
        )
        session.commit()
    table = review.findings_table(services, people["viewer"], project, "open")
    assert list(table["id"]) == [finding.id] and list(table["kind"]) == ["low_score"]
    assert review.preview(services, people["viewer"], project, finding.id) is not None
    with pytest.raises(Forbidden, match="reviewer"):
        review.resolve(services, people["annotator"], project, finding.id or 0, "rejected")
    assert review.resolve(services, people["reviewer"], project, finding.id or 0, "rejected") == (
        f"finding {finding.id}: rejected"
    )
    with new_session(services.engine) as session:
        assert get_finding(session, finding_id=finding.id or 0).status == "closed"  # type: ignore[union-attr]
    (row,) = _rows(services, project)
    assert row.status.value == "rejected"
    assert review.findings_table(services, people["viewer"], project, "open").empty


@pytest.mark.parametrize("fmt", ["COCO", "YOLO", "Mask PNGs"])
def test_export_writes_a_download_and_a_report(
    services: UIServices, project: int, people: dict[str, Caller], fmt: str
) -> None:
    bus_image, _ = _image_ids(services, project)
    _box(services, ADMIN, project, bus_image, "person")
    path, report = export(services, people["viewer"], project, fmt, ["accepted", "proposed"])
    assert path.is_file() and path.resolve().is_relative_to((services.home / "exports").resolve())
    if fmt == "COCO":
        coco = COCO(str(path))
        assert len(coco.getAnnIds()) == 1 and report["annotations"] == 1
        assert json.loads(Path(report["fidelity_path"]).read_text())
    else:
        assert path.suffix == ".zip" and report["images"] == 2


def test_export_of_a_project_named_like_a_path_stays_in_the_data_home(
    services: UIServices, photo_zip: Path
) -> None:
    with pytest.raises(Invalid, match="must not contain '/'"):
        actions.create_project(services, ADMIN, "../../../../tmp/x")
    project_id, _ = actions.create_project(services, ADMIN, "..\u2024tmp")
    path, _ = export(services, ADMIN, project_id, "COCO", ["accepted"])
    assert path.resolve().is_relative_to((services.home / "exports").resolve())


def test_export_refuses_bad_choices(services: UIServices, project: int) -> None:
    with pytest.raises(Invalid, match="statuses must be a non-empty subset"):
        export(services, ADMIN, project, "COCO", [])
    with pytest.raises(ValueError, match="format must be one of"):
        export(services, ADMIN, project, "VOC", ["accepted"])
