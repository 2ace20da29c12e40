"""`labelwright jobs`: list, cancel and resume background jobs (labeling, tracking, propagation,
training), whichever process queued them; a resume runs in the foreground unless --background."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from server.cli_ops import JsonOpt, fail
from server.settings import get_settings
from store.db import new_session
from store.models import JobState

jobs_app = typer.Typer(help="List, cancel and resume background jobs.", no_args_is_help=True)
console = Console(stderr=True)


@jobs_app.command("list")
def list_(
    project: Annotated[str | None, typer.Option("--project", "-p", help="Only this project.")] = None,
    state: Annotated[str | None, typer.Option(help="Only jobs in this state.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Jobs, newest first."""
    from store.jobs import list_jobs
    from store.projects import get_project_by_name

    engine = get_settings().open_store()
    with new_session(engine) as session:
        project_id = None
        if project is not None:
            found = get_project_by_name(session, name=project)
            if found is None:
                raise fail(f"no project named {project!r}")
            project_id = found.id
        try:
            rows = list_jobs(session, project_id=project_id, state=state)
        except ValueError as exc:
            raise fail(f"--state must be one of {[s.value for s in JobState]}: {exc}") from None
    engine.dispose()
    data = [
        {
            "id": j.id,
            "project_id": j.project_id,
            "kind": j.kind,
            "state": j.state.value,
            "done": j.cursor,
            "total": j.total,
            "classes": j.params.get("classes"),
            "error": j.error,
            "updated_at": j.updated_at.isoformat(timespec="seconds"),
        }
        for j in rows
    ]
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    table = Table("id", "kind", "state", "progress", "classes", "updated", "error")
    for d in data:
        table.add_row(
            str(d["id"]), d["kind"], d["state"], f"{d['done']}/{d['total']}", ",".join(d["classes"] or []),
            d["updated_at"], d["error"],
        )  # fmt: skip
    Console().print(table)


def _project_of(env: Any, job_id: int) -> int:
    from store.jobs import get_job

    with new_session(env.engine) as session:
        job = get_job(session, job_id=job_id)
    if job is None:
        raise fail(f"no job with id {job_id}")
    return job.project_id


@jobs_app.command()
def cancel(job_id: Annotated[int, typer.Argument(help="Job id.")]) -> None:
    """Cancel a job: a queued one at once, a running one after its current image."""
    from ops import jobs as job_ops
    from server.cli_ops import CLI, cli_env

    with cli_env() as env:
        job = job_ops.cancel(env, CLI, _project_of(env, job_id), job_id)
    state = "cancelled" if job.state == "cancelled" else "cancel requested (stops after the current image)"
    console.print(f"job {job_id}: {state}")


@jobs_app.command()
def resume(
    job_id: Annotated[int, typer.Argument(help="Job id.")],
    background: Annotated[
        bool, typer.Option(help="Only requeue it, for a running server to pick up.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Resume a cancelled or failed job from its cursor (in the foreground unless --background)."""
    from ops import jobs as job_ops
    from ops.errors import OpError
    from ops.unit import Env
    from server import cli_label  # at call time: tests swap its backends_factory
    from server.cli_ops import CLI

    home, models_dir = cli_label.paths()
    engine = get_settings().open_store()
    try:
        with new_session(engine) as session:
            from store.jobs import get_job

            found = get_job(session, job_id=job_id)
        if found is None:
            raise fail(f"no job with id {job_id}")
        runner = cli_label.make_runner(
            engine, home, models_dir, found.params.get("stack", "lite"), found.params.get("detector")
        )
        runner.requeue_stale()
        try:
            job = job_ops.resume(Env(engine, home), CLI, found.project_id, job_id)
        except OpError as exc:
            raise fail(str(exc)) from None
        if background:
            console.print(f"job {job_id} queued at {job.done}/{job.total}")
            return
        started = time.perf_counter()
        try:
            job = cli_label.run_foreground(runner, job_id, as_json)
        except KeyboardInterrupt:
            console.print(f"cancelled job {job_id}; `labelwright jobs resume {job_id}` continues it")
            raise typer.Exit(130) from None
        cli_label.print_summary(cli_label.summary(engine, job, time.perf_counter() - started), as_json)
        if job.state != JobState.done:
            raise typer.Exit(1)
    finally:
        engine.dispose()
