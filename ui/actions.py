"""What the UI's buttons do: each a few lines that call an operation as the signed-in person.

Every function takes the :class:`UIServices`, the :class:`~ops.caller.Caller` and plain values,
so tests call them directly with callers of any role. The operation checks the policy, the
version the page showed (a stale edit is refused with who changed it), records history (the
Undo button) and publishes the event other pages follow. A refusal raises one of
:data:`ERRORS`; :func:`refusal` is how the page shows it, and nothing was written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ops import annotations, categories, history, images, jobs, projects
from ops.annotations import NewAnnotation
from ops.caller import Caller
from ops.errors import OpError
from ops.policy import signed_in
from store.errors import StoreError
from tools import segment
from tools.registry import ToolError
from ui.services import UIServices

# What a person's action can fail with: shown to them as a message, nothing written.
ERRORS = (OpError, ValueError, ToolError, StoreError)


def refusal(exc: BaseException) -> str:
    """The status line for a refused action."""
    return f"⚠️ {exc}"


def parse_classes(text: str) -> list[str]:
    """``"person, bus,,tie"`` -> ``["person", "bus", "tie"]`` (order kept, duplicates dropped)."""
    return list(dict.fromkeys(" ".join(part.split()) for part in text.split(",") if part.strip()))


def project_choices(services: UIServices, caller: Caller | None) -> list[tuple[str, int]]:
    """The caller's projects (every project for an instance admin) as dropdown choices."""
    return [(p.name, p.id) for p in projects.list_projects(services.env, caller)]


def create_project(services: UIServices, caller: Caller | None, name: str) -> tuple[int, str]:
    created = projects.create_project(services.env, caller, name=name)
    return created.id, f"created project {created.name}"


def save_classes(services: UIServices, caller: Caller | None, project_id: int, text: str) -> list[str]:
    names = parse_classes(text)
    if not names:
        raise ValueError(f"type the classes separated by commas, e.g. 'person, bus'; got {text!r}")
    return [c.name for c in categories.ensure(services.env, caller, project_id, names)]


def upload_zip(services: UIServices, caller: Caller | None, project_id: int, source: Path) -> str:
    """Ingest a zip (or folder) into the project; returns the report as markdown."""
    report = images.ingest(services.env, caller, source=source, project_id=project_id)
    lines = [
        f"**{len(report.added)} added**, {len(report.duplicates)} duplicates, "
        f"{len(report.skipped)} skipped ({report.seconds:.1f} s)"
    ]
    lines += [f"- duplicate: `{name}` is the same as `{of}`" for name, of in report.duplicates]
    lines += [f"- skipped: `{name}`: {reason}" for name, reason in report.skipped]
    return "\n".join(lines)


def segment_gesture(
    services: UIServices,
    caller: Caller | None,
    project_id: int,
    image_id: int,
    label: str,
    gesture: dict[str, Any],
    track: str | None = None,
) -> tuple[int, str]:
    """Segment the object at a clicked point or inside a dragged box; returns the new annotation id.
    On a video frame ``track`` puts it on a track (see :func:`draw_shape`)."""
    if not label.strip():
        raise ValueError("pick the class to segment first (the 'Class' box)")
    args: dict[str, Any] = {"image": image_id, "label": label}
    if track is not None and images.get(services.env, caller, project_id, image_id).video_id is not None:
        args["track"] = track  # a track id or "new", as the segment tool takes it
    if gesture["kind"] == "point":
        args["points"] = [[gesture["x"], gesture["y"]]]
    else:
        args["box"] = gesture["box"]
    result = segment.TOOL(services.tool_context(signed_in(caller), project_id), args)
    return result.annotation_id, result.text()


def label_check(services: UIServices) -> jobs.LabelCheck:
    """The detector's own vocabulary test (the lite detector knows COCO's 80 classes only)."""
    from tools.auto_label import check_labels

    def check(labels: list[str]) -> None:
        try:
            check_labels(services.backends().detector, labels)
        except ToolError as exc:
            raise ValueError(str(exc)) from None

    return check


def start_label(
    services: UIServices, caller: Caller | None, project_id: int, classes: str, threshold: float
) -> tuple[int, str]:
    """Start the auto-label job over every image and save its classes; returns the job id."""
    names = parse_classes(classes)
    job = jobs.start_label(
        services.env,
        caller,
        project_id,
        classes=names,
        threshold=float(threshold),
        check=label_check(services),
        video=None,  # a project of videos only gets tracks (the label_video job), as on the CLI
    )
    if services.on_job is not None:
        services.on_job(job.id)
    return job.id, f"started job {job.id}: labeling {', '.join(job.params['classes'])} on {job.total} images"


def progress_line(job: jobs.JobInfo) -> str:
    pct = 100 * job.done / job.total if job.total else 100.0
    line = f"job {job.id} ({job.kind}): **{job.state}**, {job.done}/{job.total} images ({pct:.0f}%)"
    return line + (f" — {job.error}" if job.error else "")


def job_progress(
    services: UIServices, caller: Caller | None, project_id: int, job_id: int
) -> tuple[str, bool]:
    """A progress line for the job and whether it has ended."""
    job = jobs.get(services.env, caller, project_id, job_id)
    return progress_line(job), job.state not in ("queued", "running")


def cancel_job(services: UIServices, caller: Caller | None, project_id: int, job_id: int) -> str:
    job = jobs.cancel(services.env, caller, project_id, job_id)
    if job.state == "cancelled":
        return f"cancelled job {job_id}"
    return f"cancelling job {job_id} after the image in flight"


def relabel_annotation(
    services: UIServices, caller: Caller | None, project_id: int, annotation_id: int, version: int | None,
    class_name: str,
) -> str:  # fmt: skip
    ann = annotations.update(
        services.env, caller, project_id, annotation_id, version=version, label=class_name
    )
    return f"#{annotation_id} is now {' '.join(class_name.split())} (version {ann.version})"


def set_annotation_status(
    services: UIServices, caller: Caller | None, project_id: int, annotation_id: int, version: int | None,
    status: str,
) -> str:  # fmt: skip
    annotations.update(services.env, caller, project_id, annotation_id, version=version, status=status)
    return f"#{annotation_id} {status}"


def delete(
    services: UIServices, caller: Caller | None, project_id: int, annotation_id: int, version: int | None
) -> str:
    annotations.delete(services.env, caller, project_id, annotation_id, version=version)
    return f"deleted #{annotation_id}"


def undo_last(services: UIServices, caller: Caller | None, project_id: int) -> str:
    result = history.step(services.env, caller, project_id, "undo")
    if result is None:
        return "nothing to undo"
    return f"undone: {result.description}" + (" (your newest change)" if result.own else "")


def draw_shape(
    services: UIServices,
    caller: Caller | None,
    project_id: int,
    image_id: int,
    class_name: str,
    *,
    annotation_id: int | None,
    version: int | None,
    box: list[float] | None = None,
    polygon: list[list[float]] | None = None,
    track: str | None = None,
) -> tuple[int, str]:
    """Replace the selected annotation's shape (at the version shown) or add a new, proposed one.

    A new shape on a video frame goes on ``track``: a track id of the frame's video, ``"new"`` (a
    new track, in the same undo step) or None (none); on a photo ``track`` is ignored (the page
    shows the control on frames only).
    """
    from store.masks import rle_from_mask
    from store.polygons import mask_from_polygons

    image = images.get(services.env, caller, project_id, image_id)
    if polygon is not None and len(polygon) < 3:
        raise ValueError(f"a polygon needs at least 3 points, got {len(polygon)}")
    if box is not None:
        x1, y1, x2, y2 = box
        shape: dict[str, Any] = {"mask": None, "bbox": [x1, y1, x2 - x1, y2 - y1]}
    else:
        flat = [[v for xy in polygon or [] for v in xy]]
        shape = {"mask": rle_from_mask(mask_from_polygons(flat, image.height, image.width))}
    if annotation_id is not None:
        annotations.update(services.env, caller, project_id, annotation_id, version=version, **shape)
        return annotation_id, f"redrew #{annotation_id}"
    if not class_name.strip():
        raise ValueError("pick the class of the new annotation first (the 'Class' box)")
    on = annotations.on_track(track if image.video_id is not None else None)
    (ann,) = annotations.create(
        services.env, caller, project_id, image_id=image_id,
        items=[NewAnnotation(label=class_name, tool="ui", bbox=shape.get("bbox"), mask=shape["mask"], **on)],
        description=f"draw {' '.join(class_name.split())}",
    )  # fmt: skip
    where = "" if ann.track_id is None else f" on {'new ' * bool(on.get('new_track'))}track {ann.track_id}"
    return ann.id or 0, f"added #{ann.id} {' '.join(class_name.split())}{where}"


def propagate(
    services: UIServices, caller: Caller | None, project_id: int, annotation_id: int, version: int | None
) -> str:
    """Re-follow the selected annotation's track from its frame on (the person just fixed it there),
    with the process's model stack, as one undoable change."""
    from ops.errors import Conflict
    from tools.video_propagate import propagate as follow_track

    ann = annotations.get(services.env, caller, project_id, annotation_id)
    if ann.track_id is None:
        raise ValueError(f"#{annotation_id} is not on a track: Propagate follows a track of a video")
    if version is not None and ann.version != version:
        raise Conflict(f"#{annotation_id} changed since this page drew it (version {ann.version}, shown "
                       f"{version}); look at it again before propagating")  # fmt: skip
    frame = images.get(services.env, caller, project_id, ann.image_id).frame_index or 0
    done = follow_track(services.env, caller, project_id, ann.track_id, frame, services.backends())
    return (
        f"propagated track {done.track_id} from frame {done.from_frame} to {done.to_frame}: "
        f"{done.created} annotations replace {done.deleted}"
    )
