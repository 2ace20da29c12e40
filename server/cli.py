"""`labelwright`: one command with verbs. Data lives in LABELWRIGHT_HOME (see server.settings).

Each verb opens the store, calls one function from a lower layer and prints the result, as a
table for people or as JSON with ``--json`` for scripts. Sub-apps of other concerns (models,
label/jobs, llm) live in their own ``server/cli_*.py`` modules and are mounted here.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ops.exports import Format
from ops.imports import ImportFormat
from server.cli_ops import CLI, JsonOpt, cli_env, fail, project_id
from server.settings import get_settings

app = typer.Typer(
    name="labelwright",
    help="Local, privacy-first image annotation where an LLM agent does the labeling.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)

ProjectOpt = Annotated[str, typer.Option("--project", "-p", help="Project name.")]


@contextmanager
def progress_bar(label: str) -> Iterator[Any]:
    """A rich progress bar on stderr; yields ``update(done, total_or_None)``."""
    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not sys.stderr.isatty(),
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def emit(result: dict[str, Any], as_json: bool, human: str) -> None:
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
    else:
        console.print(human)


@app.command()
def ingest(
    source: Annotated[Path, typer.Argument(help="A .zip of images and videos, a folder, or one video.")],
    project: ProjectOpt,
    fps: Annotated[
        float | None,
        typer.Option(min=0.001, help="Frames per second kept from videos (default: every frame)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add images and videos (MP4, MOV, WebM, AVI: their sampled frames) to a project (created if
    new); report skips by name and reason."""
    from ops import images

    if not source.exists():
        raise fail(f"{source} does not exist")
    with cli_env() as env, progress_bar("ingesting") as update:
        report = images.ingest(env, CLI, source=source, project_name=project, progress=update, sample_fps=fps)
    data = report.to_dict()
    lines = [
        f"project {report.project!r}: {len(report.added)} added, {len(report.duplicates)} duplicates, "
        f"{len(report.skipped)} skipped"
    ]
    lines += [f"  video {v.file_name}: {v.frames} frames of {v.duration_s:.1f} s" for v in report.videos]
    lines += [f"  skipped {name}: {reason}" for name, reason in report.skipped]
    lines += [f"  duplicate {name} (same as {of})" for name, of in report.duplicates]
    emit(data, as_json, "\n".join(lines))


@app.command("import")
def import_(
    annotations: Annotated[
        Path, typer.Argument(help="COCO JSON (images or video fields) or a MOTChallenge gt.txt / det.txt.")
    ],
    project: ProjectOpt,
    images: Annotated[Path | None, typer.Option(help="Folder holding the images the file names.")] = None,
    fmt: Annotated[
        ImportFormat,
        typer.Option("--format", help="coco | coco-video | mot (video ones: onto ingested videos)"),
    ] = ImportFormat.coco,
    status: Annotated[str, typer.Option(help="Status given to imported annotations.")] = "accepted",
    video: Annotated[
        str | None,
        typer.Option(help="MOT: the project's video the file is about (default: the file's stem)."),
    ] = None,
    class_name: Annotated[
        str | None, typer.Option("--class", help="MOT: the class of the boxes (MOT files name none).")
    ] = None,
    class_map: Annotated[
        list[str] | None,
        typer.Option(
            "--map", help="MOT: NUMBER=NAME (or NUMBER=- to leave it out) per gt.txt class (repeatable)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Import annotations: COCO polygons or RLE (bad entries are reported, never imported), or
    video tracks from COCO with video fields or MOTChallenge text (all or nothing)."""
    from ops.imports import import_annotations, parse_class_map

    if not annotations.is_file():
        raise fail(f"{annotations} is not a file")
    with cli_env() as env:
        report = import_annotations(
            env, CLI, project_name=project, path=annotations, fmt=fmt, images_dir=images, status=status,
            video=video, class_name=class_name, class_map=parse_class_map(class_map),
        )  # fmt: skip
    data = report.to_dict()
    human = "\n".join(f"{k}: {v}" for k, v in data.items() if not isinstance(v, list | dict))
    if data.get("tracks"):
        human += "\ntracks (file id -> track id): " + ", ".join(
            f"{k} -> {v}" for k, v in data["tracks"].items()
        )
    for problem in data.get("problems", [])[:50]:
        what = (
            f"annotation {problem['annotation_id']}"
            if "annotation_id" in problem
            else f"image {problem.get('image_id')}"
        )
        human += f"\n  not imported: {what}: {problem['reason']}"
    if len(data.get("problems", [])) > 50:
        human += f"\n  ... and {len(data['problems']) - 50} more (see --json)"
    emit(data, as_json, human)


@app.command()
def export(
    project: ProjectOpt,
    out: Annotated[Path, typer.Option(help="Output file (coco, coco-video) or folder (yolo, masks, mot).")],
    fmt: Annotated[
        Format, typer.Option("--format", help="coco | coco-video | yolo | masks | mot")
    ] = Format.coco,
    status: Annotated[
        list[str] | None, typer.Option(help="Only annotations with this status (repeatable).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Export a project's annotations; COCO exports also write a fidelity report."""
    from ops import exports

    with cli_env() as env:
        data = exports.export(env, CLI, project_id(env, project), fmt.value, statuses=status, out=out).report
    emit(data, as_json, "\n".join(f"{k}: {v}" for k, v in data.items() if not isinstance(v, list | dict)))


@app.command()
def undo(
    project: ProjectOpt,
    steps: Annotated[int, typer.Option(min=1, help="How many changes to undo.")] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Revert the project's last change(s): a bulk change counts as one."""
    _history("undo", project, steps, as_json)


@app.command()
def redo(
    project: ProjectOpt,
    steps: Annotated[int, typer.Option(min=1, help="How many undone changes to re-apply.")] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Re-apply changes that were undone (until a new change is made)."""
    _history("redo", project, steps, as_json)


def _history(verb: str, project: str, steps: int, as_json: bool) -> None:
    from ops import history

    done: list[dict[str, Any]] = []
    with cli_env() as env:
        pid = project_id(env, project)
        for _ in range(steps):
            summary = history.step(env, CLI, pid, verb)
            if summary is None:
                break
            done.append(dataclasses.asdict(summary))
    if not done:
        emit({verb: []}, as_json, f"nothing to {verb}")
        return
    emit({verb: done}, as_json, "\n".join(f"{verb}: {d}" for d in done))


@app.command()
def projects(as_json: JsonOpt = False) -> None:
    """List projects with their image and annotation counts."""
    from ops import projects as project_ops

    with cli_env() as env:
        rows = [{"id": p.id, "name": p.name, "images": p.images} for p in project_ops.list_projects(env, CLI)]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("id", "name", "images")
    for r in rows:
        table.add_row(str(r["id"]), r["name"], str(r["images"]))
    Console().print(table)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 7860).")] = None,
) -> None:
    """Start the web server: UI at /, REST API under /api/v1."""
    import uvicorn

    from server.app import create_app

    settings = get_settings().model_copy(update={k: v for k, v in {"host": host, "port": port}.items() if v})
    console.print(f"labelwright serving on http://{settings.host}:{settings.port}  (data: {settings.home})")
    # proxy_headers=False: the TCP peer must stay the real one, or X-Forwarded-For could claim to be
    # a trusted identity proxy.
    from server.ui_mount import mount_ui

    app_ = create_app(settings, mount_ui=lambda api: mount_ui(settings, api))
    uvicorn.run(app_, host=settings.host, port=settings.port, log_level="warning", proxy_headers=False)


def main() -> None:
    app()


def _mount_subcommands() -> None:
    """Verbs that belong to other concerns live in their own modules; mount them here."""
    from server import (
        cli_audit,
        cli_chat,
        cli_label,
        cli_llm,
        cli_mcp,
        cli_models,
        cli_review,
        cli_train,
        cli_users,
    )  # fmt: skip

    app.add_typer(cli_models.app, name="models")
    app.add_typer(cli_llm.app, name="llm")
    app.add_typer(cli_label.app)  # no name: `label` and the `jobs` group sit at the top level
    app.add_typer(cli_chat.app)
    app.add_typer(cli_mcp.app)  # `labelwright mcp`: the MCP server over stdio
    app.add_typer(cli_audit.app)
    app.add_typer(cli_review.app, name="review")
    app.add_typer(cli_users.users_app, name="users")
    app.add_typer(cli_users.tokens_app, name="tokens")
    from server.cli_backup import app as backup_app

    app.add_typer(backup_app)  # no name: `backup` and `restore` sit at the top level
    from server import cli_db, cli_worker  # scale-out: `labelwright worker`, `labelwright db`

    app.add_typer(cli_worker.app)
    app.add_typer(cli_db.app, name="db")
    app.add_typer(cli_train.app)  # no name: `calibrate`, `review-queue` and `train` sit at the top level


_mount_subcommands()
