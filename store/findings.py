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


def upsert_finding(
    session: Session,
    *,
    project_id: int,
    kind: str,
    fingerprint: str,
    message: str = "",
    severity: float = 0.5,
    confidence: float = 0.5,
    image_id: int | None = None,
    annotation_id: int | None = None,
    bbox: list[float] | None = None,
    evidence: dict[str, Any] | None = None,
) -> AuditFinding:
    """Insert a finding, or refresh the one with the same fingerprint found by an earlier run.

    A refreshed finding keeps its status: a finding closed as "not a problem" stays closed when the
    next review run finds it again.
    """
    if not fingerprint or not kind:
        raise ValueError(
            f"a finding needs a kind and a fingerprint, got kind={kind!r}, fingerprint={fingerprint!r}"
        )
    values = {
        "kind": kind,
        "message": message,
        "severity": _unit("severity", severity),
        "confidence": _unit("confidence", confidence),
        "image_id": image_id,
        "annotation_id": annotation_id,
        "bbox": bbox,
        "evidence": evidence or {},
    }
    finding = session.exec(
        select(AuditFinding).where(
            AuditFinding.project_id == project_id, AuditFinding.fingerprint == fingerprint
        )
    ).first()
    if finding is None:
        finding = AuditFinding(project_id=project_id, fingerprint=fingerprint, **values)
    else:
        for name, value in values.items():
            setattr(finding, name, value)
    session.add(finding)
    session.commit()
    return finding


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


def close_finding(session: Session, *, finding_id: int, resolution: str) -> AuditFinding | None:
    """Close a finding with what was done about it (fixed, not a problem, ...)."""
    if not resolution.strip():
        raise ValueError("closing a finding needs a resolution (e.g. 'fixed', 'not a problem'), got ''")
    finding = session.get(AuditFinding, finding_id)
    if finding is None:
        return None
    finding.status = "closed"
    finding.resolution = resolution.strip()
    finding.closed_at = utcnow()
    session.add(finding)
    session.commit()
    return finding
