"""The audit runner against a real SQLite store: stored once per problem, closed when it went away."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlmodel import select

from store.annotations import create_annotation, delete_annotation, update_annotation
from store.categories import ensure_categories
from store.db import new_session
from store.findings import close_finding
from store.history import begin_change
from store.models import AuditFinding
from tests.tools.conftest import FakeDetector, Store
from tools.audit.runner import run_audit


def add(store: Store, image: str, label: str, bbox: list[float], score: float = 0.9) -> int:
    with new_session(store.engine) as session:
        (cat,) = ensure_categories(session, project_id=store.project_id, names=[label])
        batch = begin_change(session, project_id=store.project_id, actor="t", description="add")
        ann = create_annotation(
            session, batch=batch, image_id=store.images[image], category_id=cat.id, bbox=bbox, score=score
        )
        session.commit()
        return ann.id  # type: ignore[return-value]


def audit(store: Store, backends: Any = None) -> Any:
    with new_session(store.engine) as session:
        return run_audit(session, project_id=store.project_id, home=store.home, backends=backends)


def rows(store: Store) -> dict[tuple[str, int | None], AuditFinding]:
    with new_session(store.engine) as session:
        found = session.exec(select(AuditFinding).where(AuditFinding.project_id == store.project_id)).all()
        return {(f.kind, f.annotation_id): f for f in found}


def count(store: Store) -> int:
    with new_session(store.engine) as session:
        return len(session.exec(select(AuditFinding.id)).all())


def seed(store: Store) -> dict[str, int]:
    bus = add(store, "bus.jpg", "bus", [18, 230, 787, 490])
    dup = add(store, "bus.jpg", "bus", [20, 232, 785, 488], score=0.5)  # the weaker copy is flagged
    tiny = add(store, "zidane.jpg", "tie", [440, 430, 3, 3])
    return {"bus": bus, "dup": dup, "tiny": tiny}


def test_findings_are_ranked_and_deduplicated_across_runs(store: Store) -> None:
    ids = seed(store)
    first = audit(store)
    assert (first.annotations, first.images, first.models) == (3, 6, False)
    kinds = {(f["kind"], f["annotation_id"]) for f in first.findings}
    assert {("duplicate", ids["dup"]), ("tiny_box", ids["tiny"])} <= kinds
    assert ("unlabelled_image", None) in kinds  # four photos carry no labels
    ranks = [f["severity"] * f["confidence"] for f in first.findings]
    assert ranks == sorted(ranks, reverse=True)
    dup = next(f for f in first.findings if f["kind"] == "duplicate")
    assert (
        dup["image"] == "bus.jpg"
        and dup["bbox"] == [20, 232, 785, 488]
        and dup["evidence"]["other_id"] == ids["bus"]
    )
    stored = count(store)
    second = audit(store)
    assert (second.new, count(store), len(second.findings)) == (0, stored, len(first.findings))
    assert first.new == stored == 6  # duplicate, tiny box, four unlabelled images


def test_fixed_deleted_and_rejected_annotations_close_their_findings(store: Store) -> None:
    ids = seed(store)
    audit(store)
    with new_session(store.engine) as session:
        batch = begin_change(session, project_id=store.project_id, actor="t", description="fix")
        delete_annotation(session, batch=batch, annotation_id=ids["dup"])
        update_annotation(session, batch=batch, annotation_id=ids["tiny"], bbox=[440, 430, 60, 290])
        session.commit()
    report = audit(store)
    found = rows(store)
    assert found[("duplicate", ids["dup"])].resolution == "deleted"
    assert found[("tiny_box", ids["tiny"])].resolution == "fixed"
    assert report.closed == {"deleted": 1, "fixed": 1}
    assert all(f["status"] == "open" for f in report.findings)


def test_accepted_stays_closed_other_closures_reopen(store: Store) -> None:
    ids = seed(store)
    audit(store)
    found = rows(store)
    with new_session(store.engine) as session:
        close_finding(session, finding_id=found[("tiny_box", ids["tiny"])].id, resolution="accepted")
        close_finding(session, finding_id=found[("duplicate", ids["dup"])].id, resolution="relabelled")
        session.commit()  # repositories flush; the caller commits
    report = audit(store)
    found = rows(store)
    assert (found[("tiny_box", ids["tiny"])].status, found[("tiny_box", ids["tiny"])].resolution) == (
        "closed",
        "accepted",
    )
    assert found[("duplicate", ids["dup"])].status == "open" and report.reopened == 1
    assert ("tiny_box", ids["tiny"]) not in {(f["kind"], f["annotation_id"]) for f in report.findings}
    audit(store)
    assert rows(store)[("tiny_box", ids["tiny"])].resolution == "accepted"


class RedVerifier:
    """Every crop looks like a truck: a bus label loses clearly, a truck label is fine."""

    model_id = "red"

    def score(self, crops: list[np.ndarray], labels: list[str]) -> np.ndarray:
        row = [{"truck": 0.9, "bus": 0.05}.get(label, np.nan) for label in labels]
        return np.array([row] * len(crops), dtype=np.float32).reshape(len(crops), len(labels))


@dataclass
class Models:
    detector: FakeDetector
    verifier: RedVerifier


def test_model_checks_run_with_backends_and_survive_a_run_without(store: Store) -> None:
    ids = seed(store)
    add(store, "bus.jpg", "person", [50, 400, 195, 500])  # the fake detector's first person
    truck = add(store, "zidane.jpg", "truck", [100, 100, 100, 100])
    models = Models(FakeDetector(), RedVerifier())
    report = audit(store, models)
    kinds = {(f["kind"], f["annotation_id"], f["image"]) for f in report.findings}
    assert ("label_mismatch", ids["bus"], "bus.jpg") in kinds and (
        "label_mismatch",
        truck,
        "zidane.jpg",
    ) not in kinds
    missing = [f for f in report.findings if f["kind"] == "missing_object" and f["image"] == "bus.jpg"]
    assert sorted(f["evidence"]["class"] for f in missing) == ["person", "tie"]  # tie: a project class
    missing = [f for f in missing if f["evidence"]["class"] == "person"]
    # FakeDetector's persons at 0.9 and 0.8: the first is labelled, the second is not.
    assert [(f["bbox"], f["annotation_id"]) for f in missing] == [([222.0, 405.0, 123.0, 455.0], None)]
    assert missing[0]["evidence"]["detector"] == 0.8
    assert models.detector.calls == 6  # every image, labelled or not
    again = audit(store)  # --no-models: the model findings stay as they were
    assert again.closed == {} and {f["kind"] for f in again.findings} >= {"label_mismatch", "missing_object"}
    assert audit(store, Models(FakeDetector(), RedVerifier())).new == 0


def test_audit_tool_text_lists_kinds_and_the_worst(store: Store) -> None:
    from tools.audit_tool import TOOL

    ids = seed(store)
    text = TOOL(store.ctx(), {"models": True, "top": 2}).text()  # no backends: runs without models
    assert text.startswith("audit done (no models): 6 open findings (6 new, 0 closed since last run): ")
    assert "unlabelled_image 4" in text and "tiny_box 1" in text
    assert f"; worst: duplicate on bus.jpg #{ids['dup']}: duplicates bus #{ids['bus']} (IoU" in text
    models = Models(FakeDetector(), RedVerifier())
    again = TOOL(store.ctx(models), {}).text()
    assert again.startswith("audit done: ") and "missing_object " in again and models.detector.calls == 6


def test_a_run_writes_its_findings_in_one_commit(store: Store) -> None:
    from sqlalchemy import event

    ids = seed(store)
    commits: list[int] = []
    with new_session(store.engine) as session:
        event.listen(session, "after_commit", lambda _: commits.append(1))
        report = run_audit(session, project_id=store.project_id, home=store.home)
        assert len(commits) == 1 and report.new >= 2
        batch = begin_change(session, project_id=store.project_id, actor="t", description="rm")
        delete_annotation(session, batch=batch, annotation_id=ids["dup"])
        session.commit()
        commits.clear()
        again = run_audit(
            session, project_id=store.project_id, home=store.home
        )  # closes one, refreshes others
        assert len(commits) == 1 and again.closed == {"deleted": 1}
    assert rows(store)[("duplicate", ids["dup"])].resolution == "deleted"
