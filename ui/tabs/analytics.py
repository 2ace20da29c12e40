"""The Analytics tab: totals, per-class counts, confidence histograms, the precision/recall curve
per class (from what reviewers decided, ``ops.calibration``), findings, a sample grid.

Every number is one grouped SQL query (the per-class counts read the trigger-kept summaries), so
the tab stays quick on a large project. It reads the store only through :func:`ui.views.reading`,
after the operations layer let the caller read the project.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd
from sqlalchemy import Integer, cast, func, text
from sqlmodel import Session, col, select

from ops import calibration
from ops.caller import Caller
from ops.unit import Env
from store import class_status_counts, image_count, list_images
from store.models import UNANNOTATED, Annotation, AuditFinding, Category, Image
from ui import actions, views
from ui.render import class_color
from ui.services import UIServices
from ui.shared import Shared

BINS = 10
STATUS_COLORS = {"proposed": "#f5a623", "accepted": "#2ca02c", "rejected": "#a0a0a0"}
SAMPLES = 12


def confidence_histogram(session: Session, project_id: int) -> pd.DataFrame:
    """Rows (class, bin, count) with bins ``0.0-0.1`` ... ``0.9-1.0``; unscored annotations left out."""
    bucket = func.min(cast(col(Annotation.score) * BINS, Integer), BINS - 1)
    rows = session.exec(
        select(Category.name, bucket, func.count())
        .select_from(Annotation)
        .join(Category, col(Category.id) == col(Annotation.category_id))
        .where(Annotation.project_id == project_id, col(Annotation.score).is_not(None))
        .group_by(Category.name, bucket)
    ).all()
    data = [
        {"class": name, "confidence": f"{b / BINS:.1f}-{(b + 1) / BINS:.1f}", "count": n}
        for name, b, n in rows
    ]
    return pd.DataFrame(data, columns=["class", "confidence", "count"])


def class_counts(session: Session, project_id: int) -> pd.DataFrame:
    data = [
        {"class": name, "status": status, "count": n}
        for name, by_status in class_status_counts(session, project_id=project_id).items()
        for status, n in by_status.items()
    ]
    return pd.DataFrame(data, columns=["class", "status", "count"])


def pr_curves(env: Env, caller: Caller | None, project_id: int) -> pd.DataFrame:
    """Rows (class, recall, precision, low, high, threshold): the calibration's curve per class, each
    point "accept every proposal scoring >= threshold" with its Wilson interval. A class scored by
    two models (say, the lite detector and one trained on the project) shows one curve per model."""
    groups = calibration.calibrate(env, caller, project_id).classes
    models = {}
    for c in groups:
        models.setdefault(c.label, set()).add(c.model)
    data = [
        {"class": c.label if len(models[c.label]) == 1 else f"{c.label} ({c.model})", "recall": p.recall,
         "precision": p.precision, "low": p.low, "high": p.high, "threshold": p.threshold}
        for c in groups
        for p in c.curve
    ]  # fmt: skip
    return pd.DataFrame(data, columns=["class", "recall", "precision", "low", "high", "threshold"])


def findings_by_kind(session: Session, project_id: int) -> pd.DataFrame:
    rows = session.exec(
        select(AuditFinding.kind, AuditFinding.status, func.count())
        .where(AuditFinding.project_id == project_id)
        .group_by(AuditFinding.kind, AuditFinding.status)
    ).all()
    return pd.DataFrame(
        [{"kind": k, "status": s, "count": n} for k, s, n in rows], columns=["kind", "status", "count"]
    )


def totals(session: Session, project_id: int) -> str:
    n_images = image_count(session, project_id=project_id)
    todo = session.exec(
        select(func.count()).select_from(Image).where(Image.project_id == project_id, text(UNANNOTATED))
    ).one()
    per_status = {"proposed": 0, "accepted": 0, "rejected": 0}
    for by_status in class_status_counts(session, project_id=project_id).values():
        for status, n in by_status.items():
            per_status[status] += n
    total = sum(per_status.values())
    return (
        f"**{n_images}** images ({n_images - todo} annotated, {todo} to do) · **{total}** annotations: "
        + ", ".join(f"{n} {s}" for s, n in per_status.items())
    )


def samples(services: UIServices, session: Session, project_id: int) -> list[tuple[Any, str]]:
    images, _ = list_images(session, project_id=project_id, limit=SAMPLES)
    out = []
    for image in images:
        thumb = views.picture(services.home, session, image)
        thumb.thumbnail((480, 480))
        out.append((thumb, image.file_name))
    return out


def build(services: UIServices, shared: Shared) -> Any:
    refresh = gr.Button("Refresh", size="sm", elem_id="lw-analytics-refresh")
    summary = gr.Markdown(elem_id="lw-totals")
    with gr.Row():
        counts = gr.BarPlot(
            x="class",
            y="count",
            color="status",
            color_map=STATUS_COLORS,
            title="Annotations per class",
            height=300,
        )
        hist = gr.BarPlot(x="confidence", y="count", color="class", title="Confidence per class", height=300)
    curves_note = gr.Markdown()
    curves = gr.LinePlot(
        x="recall", y="precision", color="class", title="Precision/recall per class (reviewed proposals)",
        height=300, tooltip=["class", "threshold", "precision", "low", "high", "recall"],
    )  # fmt: skip
    findings_note = gr.Markdown()
    findings = gr.BarPlot(x="kind", y="count", color="status", title="Audit findings by kind", height=250)
    grid = gr.Gallery(
        label="Samples", columns=4, height=520, allow_preview=True, elem_id="lw-samples", object_fit="contain"
    )

    def load(project_id: int | None, request: gr.Request) -> tuple[Any, ...]:
        empty = pd.DataFrame()
        if project_id is None:
            return "No project selected.", empty, empty, "", empty, "", empty, []
        try:
            return _load(services.caller(request), project_id)
        except actions.ERRORS as exc:
            return actions.refusal(exc), empty, empty, "", empty, "", empty, []

    def _load(caller: Caller | None, project_id: int) -> tuple[Any, ...]:
        curve_data = pr_curves(services.env, caller, project_id)
        with views.reading(services, caller, project_id, "project.read") as session:
            hist_data = confidence_histogram(session, project_id)
            found = findings_by_kind(session, project_id)
            return (
                totals(session, project_id),
                class_counts(session, project_id),
                gr.BarPlot(hist_data, color_map=_colors(hist_data)),
                "" if len(curve_data) else "No precision/recall curve yet: accept or reject some proposals.",
                gr.LinePlot(curve_data, color_map=_colors(curve_data)),
                "" if len(found) else "No audit findings yet: the review agent files them.",
                found,
                samples(services, session, project_id),
            )

    outputs = [summary, counts, hist, curves_note, curves, findings_note, findings, grid]
    refresh.click(load, [shared.project], outputs)
    return load, outputs


def _colors(frame: pd.DataFrame) -> dict[str, str]:
    """The same colour per class as on the canvas."""
    return {n: _hex(class_color(n)) for n in set(frame["class"])}


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)
