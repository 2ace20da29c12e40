"""Audit findings: list the review queue, run an audit, and resolve a finding in one change
(act on its annotation and close the finding together, so undo and the queue agree)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sqlmodel import Session

from ops import names
from ops.annotations import NewAnnotation, add, owned
from ops.caller import Caller
from ops.errors import Conflict, Invalid, NotFound
from ops.unit import Env, Unit, change, read
from store import annotation_queries
from store import annotations as repo
from store.filters import AnnotationFilter
from store.findings import close_finding, get_finding, list_findings
from store.models import Annotation, AuditFinding, Image

Action = Literal["accept", "reject", "delete", "dismiss", "relabel", "reshape", "add"]
RESOLUTIONS = {
    "accept": "accepted",
    "reject": "rejected",
    "delete": "deleted",
    "dismiss": "not a problem",
    "relabel": "relabelled",
    "reshape": "fixed",
    "add": "added",
}
NEEDS = {
    "accept": "annotation.review",
    "reject": "annotation.review",
    "delete": "annotation.delete",
    "relabel": "annotation.edit",
    "reshape": "annotation.edit",
    "add": "annotation.create",
}


@dataclass(frozen=True)
class Resolved:
    finding: AuditFinding  # now closed
    added: Annotation | None  # the annotation an "add" created


def list_(env: Env, caller: Caller | None, project_id: int, **filters: Any) -> list[AuditFinding]:
    """Open findings first, ranked by severity x confidence (filters: status, kind, image_id,
    offset, limit)."""
    with read(env, caller, "finding.read", project_id) as unit:
        return list_findings(unit.session, project_id=project_id, **filters)


def _finding(unit: Unit, finding_id: int) -> AuditFinding:
    finding = get_finding(unit.session, finding_id=finding_id)
    if finding is None or finding.project_id != unit.project_id:
        raise NotFound(f"no finding {finding_id} in project {unit.project_id}")
    return finding


def resolve(
    env: Env,
    caller: Caller | None,
    project_id: int,
    finding_id: int,
    action: Action,
    *,
    label: str | None = None,
    bbox: list[float] | None = None,
    mask: dict[str, Any] | None = None,
    tool: str = "review",
    model: str = "",
) -> Resolved:
    """Act on the finding's annotation and close the finding, as one change.

    accept/reject set the status; delete removes the annotation; relabel moves it to ``label``;
    reshape gives it a new ``mask`` or ``bbox``; add (a missing object) creates an accepted
    annotation of the finding's class from ``mask``; dismiss only closes the finding.
    """
    if action not in RESOLUTIONS:
        raise Invalid(f"action must be one of {sorted(RESOLUTIONS)}, got {action!r}")
    with change(env, caller, "finding.close", project_id) as unit:
        assert unit.access is not None
        finding = _finding(unit, finding_id)
        if finding.status != "open":
            raise Conflict(f"finding {finding_id} is already closed ({finding.resolution})")
        if action in NEEDS:
            unit.access.require(NEEDS[action])
        what = f"review: {action} finding {finding_id}"
        created: Annotation | None = None
        if action == "add":
            image = unit.session.get(Image, finding.image_id) if finding.image_id is not None else None
            if image is None or mask is None:
                raise Invalid(f"adding the missing object of finding {finding_id} needs its image and a mask")
            cls = label or str(finding.evidence.get("class", ""))
            (created,) = add(
                unit,
                image,
                [NewAnnotation(label=cls, mask=mask, status="accepted", tool=tool, model=model, prompt=cls)],
                what,
            )
        elif action == "accept" and finding.annotation_id is None:
            pass  # a finding about the image or project, accepted as it is
        elif action != "dismiss":
            if finding.annotation_id is None:
                raise Invalid(
                    f"finding {finding_id} ({finding.kind}) names no annotation; dismiss it instead"
                )
            ann = owned(unit, finding.annotation_id)
            batch = unit.batch(what)
            if action in ("accept", "reject"):
                repo.set_status(unit.session, batch=batch, ids=[ann.id or 0], status=RESOLUTIONS[action])
            elif action == "delete":
                repo.delete_annotation(unit.session, batch=batch, annotation_id=ann.id or 0)
            elif action == "relabel":
                if not label:
                    raise Invalid("relabel needs the class to move the annotation to")
                _relabel(unit.session, unit, ann.id or 0, label)
            else:
                fields: dict[str, Any] = {"mask": mask} if mask is not None else {"mask": None, "bbox": bbox}
                if mask is None and bbox is None:
                    raise Invalid("reshape needs a new mask or bbox")
                repo.update_annotation(unit.session, batch=batch, annotation_id=ann.id or 0, **fields)
            unit.event("annotation", "deleted" if action == "delete" else "updated", [ann.id or 0])
        closed = close_finding(unit.session, finding_id=finding_id, resolution=RESOLUTIONS[action])
        unit.event("finding", "closed", [finding_id])
        assert closed is not None
        return Resolved(closed, created)


def _relabel(session: Session, unit: Unit, annotation_id: int, label: str) -> None:
    from ops.filters import category_of

    target = category_of(session, unit.project_id, names.class_name(label))
    repo.relabel(
        session,
        batch=unit.batch(f"relabel #{annotation_id}"),
        ids=[annotation_id],
        category_id=target.id or 0,
    )


def close(
    env: Env, caller: Caller | None, project_id: int, finding_id: int, *, resolution: str
) -> AuditFinding:
    """Close a finding with a free-text resolution (nothing else changes)."""
    text = str(resolution).strip()
    if not text or len(text) > 500:
        raise Invalid(f"resolution must be 1-500 characters, got {len(text)}")
    with change(env, caller, "finding.close", project_id) as unit:
        _finding(unit, finding_id)
        closed = close_finding(unit.session, finding_id=finding_id, resolution=text)
        unit.event("finding", "closed", [finding_id])
        assert closed is not None
        return closed


def run_audit(env: Env, caller: Caller | None, project_id: int, run: Callable[[Session], Any]) -> Any:
    """Run the audit ``run(session)`` (the checks live in tools/, with the models) as one change."""
    with change(env, caller, "audit.run", project_id) as unit:
        report = run(unit.session)
        unit.event("finding", "audited", [], data={"open": len(getattr(report, "findings", []))})
        return report


def delete_flagged(env: Env, caller: Caller | None, project_id: int, finding_ids: list[int]) -> int:
    """Delete the annotations of these open findings and close them, as one change; returns how
    many annotations went (ones already gone are skipped)."""
    with change(env, caller, "finding.close", project_id) as unit:
        assert unit.access is not None
        unit.access.require("annotation.delete")
        rows = [_finding(unit, fid) for fid in dict.fromkeys(finding_ids)]
        ids = sorted({f.annotation_id for f in rows if f.status == "open" and f.annotation_id is not None})
        keep = (
            [
                a.id or 0
                for a in annotation_queries.query_annotations(
                    unit.session, project_id=project_id, where=AnnotationFilter(ids=tuple(ids))
                )
            ]
            if ids
            else []
        )
        if keep:
            repo.delete_annotations(
                unit.session, batch=unit.batch(f"review: delete {len(keep)} flagged"), ids=keep
            )
            unit.event("annotation", "deleted", keep)
        for f in rows:
            if f.status == "open":
                close_finding(unit.session, finding_id=f.id or 0, resolution="deleted")
        unit.event("finding", "closed", [f.id or 0 for f in rows])
        return len(keep)
