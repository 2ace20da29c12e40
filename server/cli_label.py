"""`labelwright label` and `labelwright jobs`: batch labeling in the foreground, and job control.

Its ``app`` holds ``label`` and the ``jobs`` group (:mod:`server.cli_jobs`) and is mounted at the
CLI's top level; ``python -m server.cli_label`` runs it on its own (same verbs).

A rerun of the same ``label`` command resumes instead of starting over: it looks for this
project's ``auto_label`` job with the same classes, images, threshold and stack that is
cancelled, failed, queued, or running with its process gone, and continues it from its cursor.
A finished one is reported, not redone (its annotations exist already).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.engine import Engine

from server.cli_jobs import jobs_app
from server.cli_ops import JsonOpt, fail
from server.jobs import JobRunner, ProgressEvent
from server.settings import get_settings
from store.db import new_session
from store.models import Job, JobState

app = typer.Typer(help="Label images in the foreground; list, cancel and resume jobs.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
console = Console(stderr=True)

# The Ray executor's sizing, shared by `label` and `worker`.
ReplicasOpt = Annotated[int, typer.Option(min=1, help="Ray: model actors (one stack each).")]
GpusOpt = Annotated[float, typer.Option(min=0.0, help="Ray: GPUs per model actor.")]
ExecutorOpt = Annotated[
    str, typer.Option(help="thread: models in this process; ray: on Ray actors (--ray-address).")
]
BatchOpt = Annotated[
    int | None,
    typer.Option(min=1, help="Images per model call (default: 8 on a GPU, 1 on CPU)."),
]
RayAddressOpt = Annotated[
    str, typer.Option(help="local (a private Ray), auto (`ray start` here), or host:port.")
]


def paths() -> tuple[Path, Path]:
    """(data home, models dir), from the server settings."""
    settings = get_settings()
    return settings.home.expanduser(), settings.models_dir.expanduser()


def backends_factory(stack: str, models_dir: Path, detector: str | None = None) -> Callable[[], Any]:
    """The vision backends of ``stack`` (its detector swapped for ``detector``, e.g. a trained
    ``project-3-yolo``), built on first use (tests swap this for fakes)."""

    def build() -> Any:
        from tools.backends.stacks import build_backends

        return build_backends(stack, models_dir, detector=detector)

    return build


def resolve_detector(env: Any, spec: str | None) -> str | None:
    """``project:<name>`` -> the detector trained on that project (``project-<id>-yolo``, its
    newest); any other model id as given (``build_backends`` checks it)."""
    if spec is None or not spec.startswith("project:"):
        return spec
    from server.cli_ops import project_id as find_project
    from tools.models.trained import detector_id

    return detector_id(find_project(env, spec.split(":", 1)[1].strip()))


def make_runner(
    engine: Engine,
    home: Path,
    models_dir: Path,
    stack: str,
    detector: str | None = None,
    ray: Any = None,
    batch: int | None = None,
) -> JobRunner:
    """A foreground runner for labeling (images, video) and training jobs: the chat's jobs run here.
    With ``ray`` (``(address, RayOptions)``) image jobs run their models on Ray actors
    (server.ray_cluster); video and training jobs stay in this process. ``batch``: images per
    model call of an image job (``tools.overlapped_label``; None: 8 on a GPU, 1 on CPU)."""
    from server.app import SharedBackends
    from tools import propagate_job, training, video_label
    from tools.auto_label import KIND
    from tools.overlapped_label import OverlappedLabelJob

    build = backends_factory(stack, models_dir, detector)
    factory = SharedBackends(build)  # one stack for every kind
    handlers: dict[str, Any] = {
        KIND: OverlappedLabelJob(home=home, backends_factory=factory, batch=batch),
        video_label.KIND: video_label.VideoLabelJob(home=home, backends_factory=factory),
        propagate_job.KIND: propagate_job.PropagateJob(home=home, backends_factory=factory),
        training.KIND: training.TrainJob(home=home, models_dir=models_dir),
    }
    if ray is not None:
        from server.ray_cluster import ray_label_job

        handlers[KIND] = ray_label_job(home, build, *ray)  # each actor builds its own stack
    return JobRunner(engine, handlers, lock_dir=home / "jobs")


def summary(engine: Engine, job: Job, seconds: float) -> dict[str, Any]:
    from ops.jobs import output
    from ops.unit import Env
    from server.cli_ops import CLI

    found = output(Env(engine, paths()[0]), CLI, job.project_id, job.id or 0)
    return {
        "job_id": job.id,
        "state": job.state.value,
        "done": job.cursor,
        "total": job.total,
        "error": job.error,
        "annotations": found.by_class,
        "tracks": found.tracks,
        "seconds": round(seconds, 2),
        "params": {k: v for k, v in job.params.items() if k not in ("image_ids", "frame_ids")},
    }


def print_summary(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    found = ", ".join(f"{n} {name}" for name, n in sorted(data["annotations"].items())) or "nothing"
    console.print(
        f"job {data['job_id']} {data['state']}: {data['done']}/{data['total']} images, "
        f"{found} proposed in {data['seconds']} s"
        + (f" on {data['tracks']} tracks" if data["tracks"] else "")
        + (f" ({data['error']})" if data["error"] else "")
    )


def run_foreground(runner: JobRunner, job_id: int, as_json: bool) -> Job:
    """Run the job with a progress bar (images/s); Ctrl-C cancels it cleanly at its cursor."""
    with Progress(
        TextColumn("labeling"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:.2f} images/s"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=as_json,
    ) as bar:
        task = bar.add_task("label", total=None, rate=0.0)

        def show(event: ProgressEvent) -> None:
            bar.update(task, completed=event.done, total=event.total, rate=event.rate)

        runner.subscribe(show)
        return runner.run_job(job_id)


def find_resumable(
    engine: Engine,
    runner: JobRunner,
    project_id: int,
    classes: list[str],
    images: list[str] | None,
    threshold: float,
    stack: str,
    video: bool,
    detector: str | None = None,
) -> Job | None:
    """This project's newest labeling job (of images, or of the videos' frames) with the same
    classes, items, threshold and stack, if not run elsewhere now."""
    from ops.errors import OpError
    from ops.jobs import LABEL, VIDEO, clean_labels, image_ids, video_frames
    from store.jobs import list_jobs

    runner.requeue_stale()  # "running" jobs whose process died are queued again first
    with new_session(engine) as session:
        try:
            ids = (
                video_frames(session, project_id, None)[1]
                if video
                else image_ids(session, project_id, images)
            )
            want = (clean_labels(classes), ids, float(threshold), stack, detector)
        except (OpError, ValueError):  # no job can match; start_label says what is wrong
            return None
        key = "frame_ids" if video else "image_ids"
        for job in list_jobs(session, project_id=project_id, kind=VIDEO if video else LABEL, limit=1000):
            p = job.params
            if (p.get("classes"), p.get(key), p.get("threshold"), p.get("stack"), p.get("detector")) == want:
                return job
    return None


@app.command()
def label(
    project: Annotated[str, typer.Option("--project", "-p", help="Project name.")],
    classes: Annotated[str, typer.Option(help="Comma-separated classes, e.g. person,bus,tie.")],
    images: Annotated[
        str | None, typer.Option(help="Comma-separated image file names or ids (default: all).")
    ] = None,
    threshold: Annotated[float, typer.Option(min=0.01, max=0.99, help="Minimum detector confidence.")] = 0.3,
    stack: Annotated[str, typer.Option(help="Model stack: lite | full.")] = "lite",
    detach: Annotated[
        bool, typer.Option("--detach", help="Queue the job for `labelwright worker` processes; print its id.")
    ] = False,
    video: Annotated[
        bool | None,
        typer.Option(
            "--video/--no-video",
            help="Label the videos' frames as tracks (lite: detector + ByteTrack + segmenter). "
            "Default: yes when the project holds only videos.",
        ),
    ] = None,
    detector: Annotated[
        str | None,
        typer.Option(
            help="Detector instead of the stack's: project:<name> (trained on that project) or a model id."
        ),
    ] = None,
    executor: ExecutorOpt = "thread",
    ray_address: RayAddressOpt = "local",
    replicas: ReplicasOpt = 1,
    gpus_per_replica: GpusOpt = 0.0,
    batch: BatchOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Label CLASSES on a project's images in the foreground; a rerun resumes a stopped run.

    With --detach the job is only queued (or a stopped one requeued) and its id printed: any
    `labelwright worker` or `labelwright serve` on the same database runs it."""
    from ops import jobs as job_ops
    from ops.errors import OpError
    from ops.unit import Env
    from server.cli_ops import CLI
    from server.cli_ops import project_id as find_project
    from tools.auto_label import KIND

    if stack not in ("lite", "full"):
        raise fail(f"--stack must be lite or full, got {stack!r}")
    ray = _ray_plan(executor, ray_address, replicas, gpus_per_replica, detach, batch)
    home, models_dir = paths()
    engine = get_settings().open_store()
    env = Env(engine, home)
    try:
        project_id = find_project(env, project)
        refs = [r.strip() for r in images.split(",") if r.strip()] if images else None
        wanted = [c for c in classes.split(",") if c.strip()]
        detector = resolve_detector(env, detector)
        if detector is None and stack == "lite":
            detector = _trained_detector(models_dir, project_id, wanted)
        try:
            runner = make_runner(engine, home, models_dir, stack, detector, ray, batch)
        except ValueError as exc:  # the Ray cluster is not there or too small
            raise fail(str(exc)) from None
        with new_session(engine) as session:
            tracks = job_ops.only_videos(session, project_id) if video is None else video
        job = find_resumable(engine, runner, project_id, wanted, refs, threshold, stack, tracks, detector)
        if job is not None and job.state == JobState.done:
            print_summary(summary(engine, job, 0.0), as_json)
            return
        if job is not None and job.state == JobState.running:
            if detach:
                _print_detached(job.id or 0, "running", as_json)
                return
            until = (
                f" (if that process is gone, its lease ends at {job.lease_until:%H:%M:%S} UTC)"
                if job.lease_until
                else ""
            )
            raise fail(f"job {job.id} with these settings is running in another process{until}")
        try:
            if job is None:
                check = runner.handlers[KIND].check_labels
                job_id = job_ops.start_label(
                    env, CLI, project_id, classes=wanted, images=refs, threshold=threshold, check=check,
                    extra={"stack": stack, **({"detector": detector} if detector else {})}, video=tracks,
                ).id  # fmt: skip
            else:
                assert job.id is not None
                job_id = job_ops.resume(env, CLI, project_id, job.id).id
                console.print(f"resuming job {job_id} at image {job.cursor + 1} of {job.total}")
        except OpError as exc:
            raise fail(str(exc)) from None
        if detach:
            _print_detached(job_id, "queued", as_json)
            return
        started = time.perf_counter()
        try:
            job = run_foreground(runner, job_id, as_json)
        except KeyboardInterrupt:
            with new_session(engine) as session:
                from store.jobs import get_job

                stopped = get_job(session, job_id=job_id)
            done = stopped.cursor if stopped else "?"
            console.print(f"cancelled job {job_id} after {done} images; rerun the same command to resume")
            raise typer.Exit(130) from None
        print_summary(summary(engine, job, time.perf_counter() - started), as_json)
        if job.state != JobState.done:
            raise typer.Exit(1)
    finally:
        if "runner" in locals():
            runner.handlers[KIND].close()
        engine.dispose()


def _ray_plan(
    executor: str, address: str, replicas: int, gpus: float, detach: bool, batch: int | None = None
) -> Any:
    """(address, RayOptions) for --executor ray, None for thread; bad combinations are refused.
    ``batch``: images per actor call (RayOptions' default when None)."""
    from server.ray_cluster import EXECUTORS

    if executor not in EXECUTORS:
        raise fail(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if executor == "thread":
        return None
    if detach:
        raise fail("--detach only queues the job; run it on Ray with `labelwright worker --executor ray`")
    from tools.ray_label import RayOptions

    return address, RayOptions(replicas=replicas, gpus=gpus, **({"batch": batch} if batch else {}))


def _print_detached(job_id: int, state: str, as_json: bool) -> None:
    """The id on stdout (for scripts: ``id=$(labelwright label ... --detach)``), a hint on stderr."""
    if as_json:
        typer.echo(json.dumps({"job_id": job_id, "state": state}))
        return
    typer.echo(job_id)
    console.print(f"job {job_id} {state}; `labelwright worker` runs it, `labelwright jobs list` shows it")


def _trained_detector(models_dir: Path, project_id: int, classes: list[str]) -> str | None:
    """The project's trained detector, when it knows the classes and the lite detector does not."""
    from tools.backends.vocab import UnknownLabel, to_coco
    from tools.models.trained import for_classes

    def known(label: str) -> bool:
        try:
            to_coco(label)
        except UnknownLabel:
            return False
        return True

    chosen = for_classes(models_dir, project_id, [c.strip() for c in classes], known)
    if chosen is not None:
        console.print(f"labeling with {chosen}, trained on this project (the lite detector cannot see these)")
    return chosen


if __name__ == "__main__":
    app()
