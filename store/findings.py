"""Audit findings: deduplicated across review runs by fingerprint, ranked for the review queue."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case
from sqlmodel import Session, col, select

from store.models import AuditFinding, utcnow


def _unit(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return float(value)


_CHUNK = 900  # fingerprints per IN (...): below SQLite's default limit on bound parameters


def _values(
    *,
    kind: str,
    fingerprint: str,
    message: str = "",
    severity: float = 0.5,
    confidence: float = 0.5,
    image_id: int | None = None,
    annotation_id: int | None = None,
    bbox: list[float] | None = None,
    evidence: dict[str, Any] | None = None,
) -> dict[str, Any]:
    if not fingerprint or not kind:
        raise ValueError(
            f"a finding needs a kind and a fingerprint, got kind={kind!r}, fingerprint={fingerprint!r}"
        )
    return {
        "kind": kind,
        "fingerprint": fingerprint,
        "message": message,
        "severity": _unit("severity", severity),
        "confidence": _unit("confidence", confidence),
        "image_id": image_id,
        "annotation_id": annotation_id,
        "bbox": bbox,
        "evidence": evidence or {},
    }


def upsert_findings(
    session: Session, *, project_id: int, findings: list[dict[str, Any]]
) -> list[AuditFinding]:
    """Insert findings, or refresh the ones with the same fingerprint found by an earlier run.

    Each item holds ``upsert_finding``'s keyword arguments. A refreshed finding keeps its status: a
    finding closed as "not a problem" stays closed when the next review run finds it again. Every
    item is checked before anything is written; one SELECT per 900 fingerprints, one flush, no
    commit (the caller commits once).
    """
    values = [_values(**item) for item in findings]
    keys = [v["fingerprint"] for v in values]
    existing: dict[str, AuditFinding] = {}
    for start in range(0, len(keys), _CHUNK):
        statement = select(AuditFinding).where(
            AuditFinding.project_id == project_id,
            col(AuditFinding.fingerprint).in_(keys[start : start + _CHUNK]),
        )
        existing.update((row.fingerprint, row) for row in session.exec(statement))
    rows = []
    for value in values:
        row = existing.get(value["fingerprint"])
        if row is None:
            row = existing[value["fingerprint"]] = AuditFinding(project_id=project_id, **value)
        else:
            for name, v in value.items():
                setattr(row, name, v)
        session.add(row)
        rows.append(row)
    session.flush()
    return rows


def upsert_finding(session: Session, *, project_id: int, **finding: Any) -> AuditFinding:
    """One finding through :func:`upsert_findings` (kind, fingerprint, message, severity, ...); flushes."""
    return upsert_findings(session, project_id=project_id, findings=[finding])[0]


def get_finding(session: Session, *, finding_id: int) -> AuditFinding | None:
    return session.get(AuditFinding, finding_id)


def list_findings(
    session: Session,
    *,
    project_id: int,
    status: str | None = None,
    kind: str | None = None,
    image_id: int | None = None,
    offset: int = 0,
    limit: int = 100,
) -> list[AuditFinding]:
    """Findings with open ones first, each group ranked by severity x confidence (highest first)."""
    statement = select(AuditFinding).where(AuditFinding.project_id == project_id)
    if status is not None:
        statement = statement.where(AuditFinding.status == status)
    if kind is not None:
        statement = statement.where(AuditFinding.kind == kind)
    if image_id is not None:
        statement = statement.where(AuditFinding.image_id == image_id)
    open_first = case((col(AuditFinding.status) == "open", 0), else_=1)
    rank = col(AuditFinding.severity) * col(AuditFinding.confidence)
    statement = statement.order_by(open_first, rank.desc(), col(AuditFinding.id)).offset(offset).limit(limit)
    return list(session.exec(statement))


def close_findings(session: Session, *, resolutions: dict[int, str]) -> list[AuditFinding]:
    """Close findings (id -> what was done about it: fixed, not a problem, ...); flushes, no commit.

    Ids that name no finding are skipped; an empty resolution raises before anything changes.
    """
    for finding_id, resolution in resolutions.items():
        if not resolution.strip():
            raise ValueError(
                f"closing a finding needs a resolution (e.g. 'fixed', 'not a problem'), "
                f"got {resolution!r} for finding {finding_id}"
            )
    closed = []
    now = utcnow()
    for finding_id, resolution in resolutions.items():
        finding = session.get(AuditFinding, finding_id)
        if finding is None:
            continue
        finding.status, finding.resolution, finding.closed_at = "closed", resolution.strip(), now
        session.add(finding)
        closed.append(finding)
    session.flush()
    return closed


def close_finding(session: Session, *, finding_id: int, resolution: str) -> AuditFinding | None:
    """Close one finding (flushes; the operation commits, with the annotation change it records)."""
    closed = close_findings(session, resolutions={finding_id: resolution})
    return closed[0] if closed else None
