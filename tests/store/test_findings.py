from __future__ import annotations

import pytest
from sqlmodel import Session

from store.findings import close_finding, get_finding, list_findings, upsert_finding
from store.models import Project


def test_upsert_dedupes_by_fingerprint_and_refreshes(session: Session, project: Project) -> None:
    first = upsert_finding(
        session,
        project_id=project.id,
        kind="duplicate",
        fingerprint="dup:1:2",
        message="boxes overlap",
        severity=0.4,
    )
    again = upsert_finding(
        session,
        project_id=project.id,
        kind="duplicate",
        fingerprint="dup:1:2",
        message="still overlap",
        severity=0.6,
        evidence={"iou": 0.93},
    )
    assert again.id == first.id
    assert len(list_findings(session, project_id=project.id)) == 1
    fresh = get_finding(session, finding_id=first.id)
    assert (fresh.message, fresh.severity, fresh.evidence) == ("still overlap", 0.6, {"iou": 0.93})


def test_closed_findings_stay_closed_when_found_again(session: Session, project: Project) -> None:
    finding = upsert_finding(session, project_id=project.id, kind="tiny_box", fingerprint="tiny:7")
    closed = close_finding(session, finding_id=finding.id, resolution="  not a problem ")
    assert closed.status == "closed" and closed.resolution == "not a problem" and closed.closed_at is not None
    again = upsert_finding(session, project_id=project.id, kind="tiny_box", fingerprint="tiny:7")
    assert again.status == "closed"
    assert close_finding(session, finding_id=999, resolution="fixed") is None


def test_list_ranks_open_first_then_severity_times_confidence(session: Session, project: Project) -> None:
    specs = [("a", 0.9, 0.9), ("b", 0.5, 0.5), ("c", 1.0, 0.6), ("d", 1.0, 1.0)]
    ids = {
        fp: upsert_finding(
            session, project_id=project.id, kind="k", fingerprint=fp, severity=sev, confidence=conf
        ).id
        for fp, sev, conf in specs
    }
    close_finding(session, finding_id=ids["d"], resolution="fixed")
    assert [f.fingerprint for f in list_findings(session, project_id=project.id)] == ["a", "c", "b", "d"]
    assert [f.fingerprint for f in list_findings(session, project_id=project.id, status="open")] == [
        "a",
        "c",
        "b",
    ]
    assert [f.fingerprint for f in list_findings(session, project_id=project.id, limit=1, offset=1)] == ["c"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"severity": 1.5}, "severity must be in \\[0, 1\\], got 1.5"),
        ({"confidence": -0.1}, "confidence must be in"),
        ({"fingerprint": ""}, "needs a kind and a fingerprint"),
    ],
)
def test_bad_findings_are_refused(session: Session, project: Project, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        upsert_finding(session, **({"project_id": project.id, "kind": "k", "fingerprint": "f"} | kwargs))
    assert list_findings(session, project_id=project.id) == []


def test_close_needs_a_resolution(session: Session, project: Project) -> None:
    finding = upsert_finding(session, project_id=project.id, kind="k", fingerprint="f")
    with pytest.raises(ValueError, match="needs a resolution"):
        close_finding(session, finding_id=finding.id, resolution=" ")
