"""Run every audit check over a project, store the findings, and close the ones that went away.

Findings are keyed by ``Finding.fingerprint()``, so a re-run refreshes the finding it found before
instead of adding a copy. After a run, an open finding that was not found again is closed: its
annotation was deleted ("deleted"), rejected ("rejected") or changed so the problem is gone
("fixed"). A finding a person accepted as is (resolution "accepted") stays closed however often a
run finds it; one closed otherwise that comes back (an undo, a new edit) is reopened. Findings of
the model checks are left alone when a run skips the models.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from store.findings import close_findings, list_findings, upsert_findings
from store.models import Annotation, AnnotationStatus, AuditFinding, Category, Image
from tools.audit import label_mismatch, missing
from tools.audit.dataset import check_dataset
from tools.audit.findings import AuditAnnotation, Finding
from tools.audit.geometry import check_geometry
from tools.audit.overlap import check_overlaps
from tools.audit.tracks import check_tracks

MODEL_KINDS = frozenset({label_mismatch.KIND, missing.MISSING, missing.SPILL, missing.LOOSE})
ACCEPTED = "accepted"


@dataclass
class AuditReport:
    """What a run did; ``findings`` are the project's open findings, highest severity x confidence first."""

    findings: list[dict[str, Any]]
    annotations: int
    images: int
    found: int
    new: int
    reopened: int
    closed: dict[str, int] = field(default_factory=dict)
    models: bool = True
    seconds: float = 0.0


def finding_dict(row: AuditFinding, image_names: dict[int, str]) -> dict[str, Any]:
    """The public form of a stored finding (the ``--json`` element)."""
    return {
        "id": row.id,
        "kind": row.kind,
        "severity": round(row.severity, 3),
        "confidence": round(row.confidence, 3),
        "image": image_names.get(row.image_id) if row.image_id is not None else None,
        "image_id": row.image_id,
        "annotation_id": row.annotation_id,
        "bbox": row.bbox,
        "message": row.message,
        "evidence": row.evidence,
        "status": row.status,
    }


def load_annotations(session: Session, *, project_id: int) -> list[AuditAnnotation]:
    """The project's annotations as audit records; rejected ones are out of the dataset already."""
    rows = session.exec(
        select(Annotation, Image, Category)
        .join(Image, col(Image.id) == col(Annotation.image_id))
        .join(Category, col(Category.id) == col(Annotation.category_id))
        .where(Annotation.project_id == project_id, Annotation.status != AnnotationStatus.rejected)
        .order_by(col(Annotation.id))
    ).all()
    return [
        AuditAnnotation(
            id=ann.id,  # type: ignore[arg-type]
            image_id=image.id,  # type: ignore[arg-type]
            image_name=image.file_name,
            image_size=(image.width, image.height),
            category=category.name,
            bbox=list(ann.bbox),
            score=ann.score,
            mask=ann.mask,
            segmentation=ann.segmentation,
            track_id=ann.track_id,
            video_id=image.video_id,
            frame_index=image.frame_index,
        )
        for ann, image, category in rows
    ]


def run_checks(
    anns: list[AuditAnnotation],
    *,
    images: dict[int, str],
    classes: list[str],
    load_image: Callable[[int], Any] | None = None,
    backends: Any = None,
    video_frames: dict[int, list[int]] | None = None,
) -> list[Finding]:
    """All checks; the model checks only with ``backends`` (and ``load_image``); the track checks
    for annotations on tracks (``video_frames``: each video's sampled frame indices)."""
    found: list[Finding] = []
    for ann in anns:
        found.extend(check_geometry(ann))
    found.extend(check_overlaps(anns))
    found.extend(check_dataset(anns, images=images, categories=classes))
    found.extend(check_tracks(anns, video_frames=video_frames or {}))
    if backends is None or load_image is None:
        return found
    by_image: dict[int, list[AuditAnnotation]] = {}
    for ann in anns:
        by_image.setdefault(ann.image_id, []).append(ann)
    verifier = getattr(backends, "verifier", None)
    vocab = label_mismatch.vocabulary(classes, anns)
    known: list[set[str]] = []  # the labels the verifier can judge, probed once by the worker

    def judge(items: list[tuple[AuditAnnotation, Any]]) -> list[Finding]:
        if not known:
            known.append(label_mismatch.judgeable(verifier, vocab))
        judged_here = [(a, crop) for a, crop in items if a.category in known[0]]
        return label_mismatch.judge_crops(judged_here, verifier=verifier, vocab=vocab)

    pending: list[tuple[AuditAnnotation, Any]] = []  # crops waiting for one batched verifier call
    # The verifier works in a thread of its own while the next image is decoded and detected: both
    # backends release the GIL, so on 2 cores they overlap instead of taking turns.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-verifier") as pool:
        judged: list[Future[list[Finding]]] = []

        def flush() -> None:
            if pending:
                judged.append(pool.submit(judge, list(pending)))
                pending.clear()

        for image_id, name in images.items():
            rgb = load_image(image_id)  # decoded once: one detector pass, and the crops of its objects
            group = by_image.get(image_id, [])
            if verifier is not None:
                pending.extend((a, label_mismatch.crop_xywh(rgb, a.bbox).copy()) for a in group)
            if len(pending) >= label_mismatch.CROP_BATCH or pending and len(judged) == 0:
                flush()  # the first image's crops go at once: the verifier starts while we detect
            found.extend(
                missing.check_missing(
                    group,
                    images={image_id: name},
                    load_image=lambda _, rgb=rgb: rgb,
                    detector=backends.detector,
                    classes=classes,
                )
            )
        flush()
        for future in judged:
            found.extend(future.result())
    return found


def _dedupe(found: list[Finding]) -> dict[str, Finding]:
    """One finding per fingerprint (the most severe), so a run never writes the same row twice."""
    out: dict[str, Finding] = {}
    for f in found:
        key = f.fingerprint()
        if key not in out or f.severity * f.confidence > out[key].severity * out[key].confidence:
            out[key] = f
    return out


def store_findings(
    session: Session, *, project_id: int, found: list[Finding], models: bool
) -> tuple[int, int, dict[str, int]]:
    """Upsert this run's findings and close the open ones it no longer finds; (new, reopened, closed).

    Written in bulk and flushed, not committed: the run commits once.
    """
    unique = _dedupe(found)
    before = {
        row.fingerprint: row
        for row in session.exec(select(AuditFinding).where(AuditFinding.project_id == project_id))
    }
    rows = upsert_findings(
        session,
        project_id=project_id,
        findings=[
            {
                "kind": f.kind,
                "fingerprint": key,
                "message": f.message,
                "severity": min(max(f.severity, 0.0), 1.0),
                "confidence": min(max(f.confidence, 0.0), 1.0),
                "image_id": f.image_id,
                "annotation_id": f.annotation_id,
                "bbox": [round(float(v), 1) for v in f.bbox] if f.bbox else None,
                "evidence": f.evidence,
            }
            for key, f in unique.items()
        ],
    )
    new = sum(key not in before for key in unique)
    reopened = 0
    for key, row in zip(unique, rows, strict=True):
        if key in before and row.status != "open" and row.resolution != ACCEPTED:
            row.status, row.resolution, row.closed_at = "open", "", None
            session.add(row)
            reopened += 1
    resolutions: dict[int, str] = {}
    for key, row in before.items():
        if row.status != "open" or key in unique or (not models and row.kind in MODEL_KINDS):
            continue
        resolution = "fixed"
        if row.annotation_id is not None:
            ann = session.get(Annotation, row.annotation_id)
            if ann is None:
                resolution = "deleted"
            elif ann.status == AnnotationStatus.rejected:
                resolution = "rejected"
        resolutions[row.id] = resolution  # type: ignore[index]
    close_findings(session, resolutions=resolutions)
    closed: dict[str, int] = {}
    for resolution in resolutions.values():
        closed[resolution] = closed.get(resolution, 0) + 1
    return new, reopened, closed


def run_audit(
    session: Session,
    *,
    project_id: int,
    home: Path,
    backends: Any = None,
    limit: int = 1000,
) -> AuditReport:
    """Audit a project; with ``backends`` (detector, verifier) the model checks run too."""
    from tools.pipeline import load_rgb

    start = time.perf_counter()
    anns = load_annotations(session, project_id=project_id)
    image_rows = {
        i.id: i
        for i in session.exec(select(Image).where(Image.project_id == project_id).order_by(col(Image.id)))
    }
    names = {i: row.file_name for i, row in image_rows.items() if i is not None}
    classes = list(
        session.exec(
            select(Category.name).where(Category.project_id == project_id).order_by(col(Category.id))
        )
    )
    video_frames: dict[int, list[int]] = {}
    for row in image_rows.values():
        if row.video_id is not None and row.frame_index is not None:
            video_frames.setdefault(row.video_id, []).append(row.frame_index)
    found = run_checks(
        anns,
        images=names,
        classes=classes,
        load_image=lambda image_id: load_rgb(home, image_rows[image_id]),
        backends=backends,
        video_frames={v: sorted(f) for v, f in video_frames.items()},
    )
    try:
        new, reopened, closed = store_findings(
            session, project_id=project_id, found=found, models=backends is not None
        )
        session.commit()  # the run's one transaction
    except BaseException:
        session.rollback()
        raise
    rows = list_findings(session, project_id=project_id, status="open", limit=limit)
    return AuditReport(
        findings=[finding_dict(r, names) for r in rows],
        annotations=len(anns),
        images=len(names),
        found=len(_dedupe(found)),
        new=new,
        reopened=reopened,
        closed=closed,
        models=backends is not None,
        seconds=round(time.perf_counter() - start, 3),
    )
