"""The labeling loop's verbs: ``calibrate`` (thresholds from review decisions, applied as one
undoable change), ``review-queue`` (what to review first) and ``train`` (a detector on the
project's accepted labels, as a foreground job with progress; Ctrl-C cancels between epochs and
``--resume JOB`` continues). Thin adapters over ``ops.calibration``, ``ops.review_order`` and
``ops.training``; mounted on the main CLI without a name.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from server.cli_ops import CLI, cli_env, fail, project_id

app = typer.Typer(help="Calibrate, order the review, train a project detector.", no_args_is_help=True)
console = Console(stderr=True)
ProjectOpt = Annotated[str, typer.Option("--project", "-p", help="Project name.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


def _emit(data: Any, as_json: bool, human: str) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
    else:
        console.print(human, markup=False)


@app.command()
def calibrate(
    project: ProjectOpt,
    precision: Annotated[float, typer.Option(min=0.5, max=0.999, help="Target precision.")] = 0.95,
    confidence: Annotated[float, typer.Option(min=0.5, max=0.999, help="Interval confidence.")] = 0.95,
    classes: Annotated[str | None, typer.Option(help="Comma-separated classes (default: all).")] = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Accept above / reject below, as one change.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="With --apply: apply without the preview.")] = False,
    no_reject: Annotated[bool, typer.Option("--no-reject", help="With --apply: only accept.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Per class: the threshold that reaches PRECISION, with its interval; --apply applies it."""
    from ops import calibration

    labels = [c.strip() for c in classes.split(",") if c.strip()] if classes else None
    with cli_env() as env:
        pid = project_id(env, project)
        kwargs: dict[str, Any] = {"precision": precision, "confidence": confidence, "labels": labels}
        if not apply:
            report = calibration.calibrate(env, CLI, pid, **kwargs)
            _emit(dataclasses.asdict(report), as_json, report.text())
            return
        dry = calibration.apply(env, CLI, pid, **kwargs, reject=not no_reject, preview=True)
        if not yes and not typer.confirm(f"{dry.summary}\napply to {dry.annotations} annotations?", err=True):
            raise fail("nothing applied")
        done = calibration.apply(env, CLI, pid, **kwargs, reject=not no_reject, confirm=dry.token)
        _emit(
            dataclasses.asdict(done), as_json, f"{done.summary}\n(one change: `labelwright undo` reverts it)"
        )


@app.command("review-queue")
def review_queue(
    project: ProjectOpt,
    next_: Annotated[int, typer.Option("--next", min=1, max=1000, help="How many items.")] = 20,
    by: Annotated[str, typer.Option(help="annotation | image")] = "annotation",
    focus: Annotated[str, typer.Option(help="errors (likely wrong first) | boundary")] = "errors",
    classes: Annotated[str | None, typer.Option(help="Comma-separated classes (default: all).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The proposals (or images) worth reviewing first."""
    from ops import review_order

    labels = [c.strip() for c in classes.split(",") if c.strip()] if classes else None
    with cli_env() as env:
        items = review_order.queue(
            env,
            CLI,
            project_id(env, project),
            limit=next_,
            by=by,
            focus=focus,
            labels=labels,  # type: ignore[arg-type]
        )
    _emit(
        [dataclasses.asdict(i) for i in items],
        as_json,
        "\n".join(i.text() for i in items) or "nothing to review",
    )


app.command("review-order", help="Same as review-queue.")(review_queue)


@app.command()
def train(
    project: ProjectOpt,
    epochs: Annotated[int, typer.Option(min=1, max=1000, help="Training epochs.")] = 50,
    model: Annotated[
        str, typer.Option("--model", "--base", help="Model yaml (random init) or imported .pt.")
    ] = ("yolov8n.yaml"),
    imgsz: Annotated[int, typer.Option(help="Training image size (multiple of 32).")] = 640,
    holdout: Annotated[float, typer.Option(help="Share of labelled images held out for mAP.")] = 0.2,
    device: Annotated[str, typer.Option(help="cpu | cuda | auto")] = "auto",
    resume: Annotated[int | None, typer.Option(help="Continue this cancelled or failed train job.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Train a detector on the accepted labels; registers it as project-<id>-yolo."""
    from ops import jobs, training
    from server.cli_label import paths
    from server.jobs import JobRunner, ProgressEvent
    from tools.training import KIND, TrainJob

    home, models_dir = paths()
    with cli_env() as env:
        pid = project_id(env, project)
        runner = JobRunner(env.engine, {KIND: TrainJob(home=home, models_dir=models_dir, device=device)},
                           lock_dir=home / "jobs")  # fmt: skip
        if resume is None:
            job = training.start_train(env, CLI, pid, epochs=epochs, base=model, imgsz=imgsz, holdout=holdout)
        else:
            runner.requeue_stale()
            job = jobs.resume(env, CLI, pid, resume)
        started = time.perf_counter()
        with Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True, disable=as_json) as bar:  # fmt: skip
            task = bar.add_task("train", total=job.total)

            def show(event: ProgressEvent) -> None:
                bar.update(task, completed=event.done, total=event.total)

            runner.subscribe(show)
            try:
                final = runner.run_job(job.id)
            except KeyboardInterrupt:
                console.print(
                    f"cancelled job {job.id}; `labelwright train --project {project} --resume {job.id}`"
                )
                raise typer.Exit(130) from None
        data = {"job_id": final.id, "state": final.state.value, "epochs": final.cursor,
                "error": final.error, "seconds": round(time.perf_counter() - started, 1),
                **final.params.get("result", {})}  # fmt: skip
    ap = ", ".join(f"{k} {v:.3f}" for k, v in data.get("ap50", {}).items())
    human = (
        f"job {data['job_id']} {data['state']}: {data['epochs']} epochs in {data['seconds']} s"
        + (f"; held-out mAP@0.5 {data['map50']:.3f} ({ap}) on {data['val_images']} images; "
           f"registered as {data['detector']}" if "map50" in data else f" ({data['error']})")
    )  # fmt: skip
    _emit(data, as_json, human)
    if final.state.value != "done":
        raise typer.Exit(1)
