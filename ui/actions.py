"""What the UI's buttons do: thin calls into store and tools, each returning a message to show.

Every function takes the :class:`UIServices` and plain values, so tests call them directly. Edits
go through change batches (store.history), so the Undo button reverts them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from store import (
    begin_change,
    create_annotation,
    delete_annotation,
    ensure_categories,
    get_annotation,
    get_image,
    get_job,
    new_session,
    relabel,
    set_status,
    undo,
    update_annotation,
)
from store.errors import StoreError
from store.ingest import ingest
from store.models import JobState
from tools import auto_label, segment
from tools.registry import ToolError
from ui.services import UIServices


def parse_classes(text: str) -> list[str]:
    """``"person, bus,,tie"`` -> ``["person", "bus", "tie"]`` (order kept, duplicates dropped)."""
    return list(dict.fromkeys(" ".join(part.split()) for part in text.split(",") if part.strip()))


def save_classes(services: UIServices, project_id: int, text: str) -> list[str]:
    names = parse_classes(text)
    if not names:
        raise ValueError(f"type the classes separated by commas, e.g. 'person, bus'; got {text!r}")
    with new_session(services.engine) as session:
        return [c.name for c in ensure_categories(session, project_id=project_id, names=names)]


def upload_zip(services: UIServices, project_name: str, source: Path) -> tuple[int, str]:
    """Ingest a zip (or folder) into the project; returns its id and the report as markdown."""
    with new_session(services.engine) as session:
        report = ingest(session, home=services.home, project_name=project_name, source=source)
    lines = [
        f"**{len(report.added)} added**, {len(report.duplicates)} duplicates, "
        f"{len(report.skipped)} skipped ({report.seconds:.1f} s)"
    ]
    lines += [f"- duplicate: `{name}` is the same as `{of}`" for name, of in report.duplicates]
    lines += [f"- skipped: `{name}`: {reason}" for name, reason in report.skipped]
    return report.project_id, "\n".join(lines)


def segment_gesture(
    services: UIServices, project_id: int, image_id: int, label: str, gesture: dict[str, Any]
) -> tuple[int, str]:
    """Segment the object at a clicked point or inside a dragged box; returns the new annotation id."""
    if not label.strip():
        raise ValueError("pick the class to segment first (the 'Class' box)")
    args: dict[str, Any] = {"image": image_id, "label": label}
    if gesture["kind"] == "point":
        args["points"] = [[gesture["x"], gesture["y"]]]
    else:
        args["box"] = gesture["box"]
    result = segment.TOOL(services.tool_context(project_id), args)
    return result.annotation_id, result.text()


def start_label(services: UIServices, project_id: int, classes: str, threshold: float) -> tuple[int, str]:
    """Save the classes and start the auto-label job over every image; returns the job id."""
    names = save_classes(services, project_id, classes)
    result = auto_label.TOOL(
        services.tool_context(project_id), {"classes": names, "threshold": float(threshold)}
    )
    return result.job_id, result.text()


def job_progress(services: UIServices, job_id: int) -> tuple[str, bool]:
    """A progress line for the job and whether it has ended."""
    with new_session(services.engine) as session:
        job = get_job(session, job_id=job_id)
    if job is None:
        return f"job {job_id} not found", True
    ended = job.state not in (JobState.queued, JobState.running)
    pct = 100 * job.cursor / job.total if job.total else 100.0
    line = f"job {job.id} ({job.kind}): **{job.state.value}**, {job.cursor}/{job.total} images ({pct:.0f}%)"
    return line + (f" — {job.error}" if job.error else ""), ended


def _edit(services: UIServices, project_id: int, description: str, fn: Any) -> Any:
    with new_session(services.engine) as session:
        batch = begin_change(session, project_id=project_id, actor=services.actor, description=description)
        out = fn(session, batch)
        session.commit()
        return out


def relabel_annotation(services: UIServices, project_id: int, annotation_id: int, class_name: str) -> str:
    with new_session(services.engine) as session:
        (category,) = ensure_categories(session, project_id=project_id, names=[class_name])
    n = _edit(
        services,
        project_id,
        f"relabel #{annotation_id} as {category.name}",
        lambda s, b: relabel(s, batch=b, ids=[annotation_id], category_id=category.id),
    )
    verb = "is now" if n else "already was"
    return f"#{annotation_id} {verb} {category.name}"


def set_annotation_status(services: UIServices, project_id: int, annotation_id: int, status: str) -> str:
    _edit(
        services,
        project_id,
        f"{status} #{annotation_id}",
        lambda s, b: set_status(s, batch=b, ids=[annotation_id], status=status),
    )
    return f"#{annotation_id} {status}"


def delete(services: UIServices, project_id: int, annotation_id: int) -> str:
    ok = _edit(
        services,
        project_id,
        f"delete #{annotation_id}",
        lambda s, b: delete_annotation(s, batch=b, annotation_id=annotation_id),
    )
    return f"deleted #{annotation_id}" if ok else f"#{annotation_id} was already gone"


def undo_last(services: UIServices, project_id: int) -> str:
    with new_session(services.engine) as session:
        result = undo(session, project_id=project_id, actor=services.actor)
    return "nothing to undo" if result is None else f"undone: {result.description}"


def draw_shape(
    services: UIServices,
    project_id: int,
    image_id: int,
    class_name: str,
    *,
    annotation_id: int | None,
    box: list[float] | None = None,
    polygon: list[list[float]] | None = None,
) -> tuple[int, str]:
    """Replace the selected annotation's shape (or add a new one) by a drawn box or polygon."""
    from store.masks import rle_from_mask
    from store.polygons import mask_from_polygons

    with new_session(services.engine) as session:
        image = get_image(session, image_id=image_id)
        if image is None:
            raise ValueError(f"no image with id {image_id}")
        if polygon is not None and len(polygon) < 3:
            raise ValueError(f"a polygon needs at least 3 points, got {len(polygon)}")
        if box is not None:
            x1, y1, x2, y2 = box
            shape: dict[str, Any] = {"mask": None, "bbox": [x1, y1, x2 - x1, y2 - y1]}
        else:
            flat = [[v for xy in polygon or [] for v in xy]]
            shape = {"mask": rle_from_mask(mask_from_polygons(flat, image.height, image.width))}
        if annotation_id is not None and get_annotation(session, annotation_id=annotation_id) is not None:
            what = f"redraw #{annotation_id}"
            _edit(services, project_id, what, lambda s, b: _update(s, b, annotation_id, shape))
            return annotation_id, what
        if not class_name.strip():
            raise ValueError("pick the class of the new annotation first (the 'Class' box)")
        (category,) = ensure_categories(session, project_id=project_id, names=[class_name])
    ann = _edit(
        services,
        project_id,
        f"draw {category.name}",
        lambda s, b: create_annotation(
            s, batch=b, image_id=image_id, category_id=category.id, status="accepted", tool="ui", **shape
        ),
    )
    return ann.id, f"added #{ann.id} {category.name}"


def _update(session: Any, batch: Any, annotation_id: int, shape: dict[str, Any]) -> Any:
    return update_annotation(session, batch=batch, annotation_id=annotation_id, **shape)


# What a person's action can fail with: shown to them as a message, nothing written.
ERRORS = (ValueError, ToolError, StoreError)
