"""``train``: "train a detector on our labels": a ``train`` job through ``ops.training.start_train``
(the checks every surface uses). Where the surface runs jobs in the foreground (the CLI's chat,
``ToolContext.on_job``) the answer is the result: held-out mAP@0.5 and the registered detector;
in a server the job is queued for its runner and the answer is its id.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from ops import jobs, training
from tools.registry import Tool, ToolContext, ToolResult


class TrainArgs(BaseModel):
    epochs: int = Field(50, ge=1, le=1000, description="Training epochs.")
    imgsz: int = Field(640, ge=32, le=4096, description="Training image size (a multiple of 32).")
    base: str = Field(
        "yolov8n.yaml", max_length=200, description="Model yaml (from scratch) or imported .pt weights."
    )


class TrainResult(ToolResult):
    job_id: int
    state: str
    epochs: int
    map50: float | None = None
    detector: str | None = None
    error: str = ""

    def text(self) -> str:
        if self.state == "done" and self.detector:
            return (
                f"trained {self.detector} in job {self.job_id} ({self.epochs} epochs): held-out mAP@0.5 "
                f"{self.map50:.2f}; label_with_project_detector labels with it"
            )
        if self.state in ("failed", "cancelled"):
            return f"training job {self.job_id} {self.state}" + (f": {self.error}" if self.error else "")
        return f"started training job {self.job_id}: {self.epochs} epochs on the accepted labels"


def train(ctx: ToolContext, args: TrainArgs) -> TrainResult:
    job = training.start_train(
        ctx.env, ctx.caller, ctx.project_id, epochs=args.epochs, imgsz=args.imgsz, base=args.base
    )
    if ctx.on_job is not None:
        ctx.on_job(job.id)
        job = jobs.get(ctx.env, ctx.caller, ctx.project_id, job.id)
    result = job.params.get("result") or {}
    return TrainResult(
        job_id=job.id, state=job.state, epochs=int(job.params["epochs"]), map50=result.get("map50"),
        detector=result.get("model_id"), error=job.error,
    )  # fmt: skip


TOOL = Tool(
    name="train",
    description="Train a detector on the project's accepted labels (a job; registers it for labeling).",
    args=TrainArgs,
    fn=train,
)
