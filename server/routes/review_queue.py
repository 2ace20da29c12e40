"""The labeling loop over HTTP: the review queue in review order, calibration (report and apply)
and starting a training job; thin adapters over :mod:`ops.review_order`, :mod:`ops.calibration`
and :mod:`ops.training` (the job then runs in the server's job runner like a labeling job)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ops import calibration, review_order, training
from server.deps import CallerDep, EnvDep
from server.routes.schema import MAX_INT, Id, Name, errors

router = APIRouter(prefix="/projects/{project_id}", tags=["labeling loop"], responses=errors())


class CalibrationApply(BaseModel):
    precision: float = Field(0.95, ge=0.5, lt=1, description="Target precision of the auto-accepted.")
    confidence: float = Field(0.95, ge=0.5, lt=1, description="Confidence of the intervals.")
    labels: list[Name] | None = Field(None, max_length=100, description="Only these classes (default: all).")
    reject: bool = Field(True, description="Also reject the proposals below the reject threshold.")
    confirm: str | None = Field(None, max_length=64, description="The token of the dry run being confirmed.")


class TrainStart(BaseModel):
    epochs: int = Field(50, ge=1, le=1000)
    base: str = Field(
        "yolov8n.yaml", max_length=200, description="Model yaml (random init) or an imported .pt."
    )
    imgsz: int = Field(640, ge=32, le=4096)
    holdout: float = Field(0.2, ge=0.05, le=0.5)


@router.get("/review-queue")
def queue(
    project_id: Id,
    env: EnvDep,
    caller: CallerDep,
    by: Literal["annotation", "image"] = "annotation",
    focus: Literal["errors", "boundary"] = "errors",
    label: Annotated[list[Name] | None, Query(max_length=100)] = None,
    exclude: Annotated[
        list[Id] | None, Query(max_length=10_000, description="Ids passed over (the stream's 'next').")
    ] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> list[dict[str, Any]]:
    """Proposals (or images) most worth a person's review first, with why."""
    items = review_order.queue(
        env,
        caller,
        project_id,
        limit=limit,
        offset=offset,
        labels=label,
        focus=focus,
        by=by,
        exclude=exclude or (),
    )
    return [dataclasses.asdict(i) for i in items]


@router.get("/calibration")
def calibrate(
    project_id: Id,
    env: EnvDep,
    caller: CallerDep,
    precision: Annotated[float, Query(ge=0.5, lt=1)] = 0.95,
    confidence: Annotated[float, Query(ge=0.5, lt=1)] = 0.95,
    label: Annotated[list[Name] | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    """Per class and model: thresholds, intervals, the precision/recall curve, what applying moves."""
    report = calibration.calibrate(
        env, caller, project_id, precision=precision, confidence=confidence, labels=label
    )
    return dataclasses.asdict(report)


@router.post("/calibration/apply")
def apply(project_id: Id, body: CalibrationApply, env: EnvDep, caller: CallerDep) -> dict[str, Any]:
    """A dry run (``token``) when large; with ``confirm`` = that token, applied as one change."""
    result = calibration.apply(
        env, caller, project_id, precision=body.precision, confidence=body.confidence, labels=body.labels,
        reject=body.reject, confirm=body.confirm,
    )  # fmt: skip
    return {"applied": not isinstance(result, calibration.DryRun), **dataclasses.asdict(result)}


@router.post("/train")
def train(project_id: Id, body: TrainStart, env: EnvDep, caller: CallerDep) -> dict[str, Any]:
    """Queue a ``train`` job (the server's runner must have its handler, ``tools.training``)."""
    job = training.start_train(
        env, caller, project_id, epochs=body.epochs, base=body.base, imgsz=body.imgsz, holdout=body.holdout
    )
    return dataclasses.asdict(job)
