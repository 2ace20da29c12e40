"""`labelwright backup` and `labelwright restore`: one archive of the database and the images.

Mounted on the main CLI with ``app.add_typer(cli_backup.app)`` (no name: both verbs sit at the
top level). The work is in :mod:`store.backup`; this module only turns settings into arguments
and results into text.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from server.cli_ops import JsonOpt
from server.settings import Settings, get_settings
from store.backup import BackupError, BackupReport, create_backup, restore_backup, verify_backup

app = typer.Typer(help="Back up and restore the data home.", no_args_is_help=True)
console = Console(stderr=True)

# What a home holds besides its data, left in place by a restore: the default model cache
# (Settings.models_dir), which a backup does not carry.
KEEP = ("models",)


def database_url(settings: Settings) -> str:
    """The database the server uses: LABELWRIGHT_DATABASE_URL, else the SQLite file of the data home."""
    return settings.database_url or f"sqlite:///{settings.db_path.expanduser()}"


def _emit(report: BackupReport, as_json: bool, human: str) -> None:
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        counts = ", ".join(f"{v} {k}" for k, v in report.counts.items())
        console.print(f"{human}: {counts}; {report.files} files, {report.bytes} bytes ({report.engine})")


@app.command()
def backup(
    out: Annotated[Path, typer.Option(help="The archive to write (a .tar file).")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUT if it exists.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a consistent backup of the database and the original images; safe while serving."""
    settings = get_settings()
    try:
        report = create_backup(
            out, home=settings.home.expanduser(), database_url=database_url(settings), overwrite=force
        )
    except (BackupError, OSError) as exc:
        console.print(f"[red]error:[/red] backup failed, nothing was written: {exc}")
        raise typer.Exit(1) from None
    _emit(report, as_json, f"backed up to {out}")


@app.command()
def restore(
    archive: Annotated[Path, typer.Argument(help="An archive written by `labelwright backup`.")],
    home: Annotated[
        Path | None, typer.Option(help="The data home to create (default: LABELWRIGHT_HOME).")
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace a non-empty home (moved aside, not deleted; models/ stays)."),
    ] = False,
    check: Annotated[bool, typer.Option("--check", help="Only verify the archive; write nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check an archive against its manifest and restore it; a damaged archive writes nothing."""
    settings = get_settings()
    target = (home or settings.home).expanduser()
    if not archive.is_file():
        console.print(f"[red]error:[/red] {archive} is not a file")
        raise typer.Exit(1)
    try:
        if check:
            report = verify_backup(archive)
        else:
            report = restore_backup(
                archive, home=target, database_url=database_url(settings), force=force, keep=KEEP
            )
    except (BackupError, OSError) as exc:
        console.print(f"[red]error:[/red] restore refused, nothing was written: {exc}")
        raise typer.Exit(1) from None
    if check:
        _emit(report, as_json, f"{archive} is intact")
        return
    _emit(report, as_json, f"restored into {target}")
    if report.replaced:
        console.print(f"the previous home was moved to {report.replaced}")
