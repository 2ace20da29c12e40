"""`labelwright worker`: a job worker process on the shared queue; start as many as you like.

Each worker claims queued jobs from the store (LABELWRIGHT_DATABASE_URL or the SQLite file),
holds a lease on the one it runs (renewed by heartbeat) and resumes jobs whose worker died once
their lease runs out (server.jobs). SIGTERM or Ctrl-C stops it after the image in flight and
puts its job back in the queue for another worker.
"""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer
from rich.console import Console

from server.cli_label import BatchOpt, ExecutorOpt, GpusOpt, RayAddressOpt, ReplicasOpt
from server.jobs import JobRunner, ProgressEvent
from server.settings import get_settings

app = typer.Typer()
console = Console(stderr=True)


@app.command()
def worker(
    stack: Annotated[
        str | None, typer.Option(help="Model stack: lite | full (default: the setting).")
    ] = None,
    lease: Annotated[float, typer.Option(min=1.0, help="Seconds a claim holds without a heartbeat.")] = 30.0,
    poll: Annotated[float, typer.Option(min=0.05, help="Seconds between looks at an empty queue.")] = 1.0,
    exit_when_idle: Annotated[
        bool, typer.Option(help="Exit once no job is queued or running (batch use).")
    ] = False,
    executor: ExecutorOpt = "thread",
    ray_address: RayAddressOpt = "auto",
    replicas: ReplicasOpt = 1,
    gpus_per_replica: GpusOpt = 0.0,
    batch: BatchOpt = None,
) -> None:
    """Run queued jobs (e.g. from `labelwright label --detach`) until stopped."""
    from server.app import SharedBackends, default_handlers
    from server.cli_label import backends_factory
    from server.ray_cluster import EXECUTORS, ray_label_job

    settings = get_settings()
    if stack is not None:
        if stack not in ("lite", "full"):
            raise typer.BadParameter(f"--stack must be lite or full, got {stack!r}")
        settings = settings.model_copy(update={"stack": stack})
    if batch is not None:
        settings = settings.model_copy(update={"label_batch": batch})
    engine = settings.open_store()
    backends = SharedBackends(backends_factory(settings.stack, settings.models_dir))
    handlers = default_handlers(settings, backends)
    if executor not in EXECUTORS:
        raise typer.BadParameter(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if executor == "ray":
        from tools.auto_label import KIND
        from tools.ray_label import RayOptions

        options = RayOptions(replicas=replicas, gpus=gpus_per_replica, batch=settings.label_batch or 4)
        try:
            handlers[KIND] = ray_label_job(
                settings.home.expanduser(), backends_factory(settings.stack, settings.models_dir),
                ray_address, options,
            )  # fmt: skip
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    runner = JobRunner(engine, handlers, poll_s=poll, lease_s=lease)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        console.print(f"worker {runner.worker}: {signal.Signals(signum).name}, stopping after this image")
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    runner.subscribe(_report)
    console.print(f"worker {runner.worker} on {engine.dialect.name}: waiting for jobs")
    try:
        released = runner.requeue_stale()
        if released:
            console.print(f"requeued jobs of gone workers: {released}")
        runner.run_worker(stop, exit_when_idle=exit_when_idle)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for job_handler in handlers.values():
            getattr(job_handler, "close", lambda: None)()
        engine.dispose()


def _report(event: ProgressEvent) -> None:
    if event.state != "running" or event.done in (0, event.total) or event.done % 10 == 0:
        tail = f" ({event.error})" if event.error else ""
        console.print(
            f"job {event.job_id} {event.state}: {event.done}/{event.total}, {event.rate} items/s{tail}"
        )
