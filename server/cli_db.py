"""`labelwright db`: the schema of the configured database (SQLite file or LABELWRIGHT_DATABASE_URL).

Every verb that opens the store migrates it on the way (the embedded default needs no step);
``db upgrade`` does it explicitly, e.g. once before starting several servers and workers on a
new PostgreSQL database, and ``db current`` says which revision a database is at.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from server.settings import get_settings
from store.db import current_revision, database_url, head_revision, migrate

app = typer.Typer(help="Database schema: upgrade it, or show its revision.", no_args_is_help=True)
console = Console(stderr=True)


def _where() -> str:
    return database_url(get_settings().database).render_as_string(hide_password=True)


@app.command()
def upgrade(
    revision: Annotated[str, typer.Option(help="Target revision (default: the newest).")] = "head",
) -> None:
    """Run the migrations up to REVISION (a no-op when the database is there already)."""
    engine = get_settings().open_store(upgrade=False)
    try:
        before = current_revision(engine)
        migrate(engine, revision)
        after = current_revision(engine)
    finally:
        engine.dispose()
    change = "already there" if before == after else f"was {before or 'empty'}"
    console.print(f"{_where()}: at revision {after} ({change})")


@app.command()
def current(as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False) -> None:
    """Show the database's schema revision and the newest one this version ships."""
    engine = get_settings().open_store(upgrade=False)
    try:
        revision = current_revision(engine)
    finally:
        engine.dispose()
    head = head_revision()
    data = {"database": _where(), "dialect": engine.dialect.name, "revision": revision, "head": head}
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    state = "up to date" if revision == head else "behind: run `labelwright db upgrade`"
    typer.echo(f"{data['database']}: revision {revision or '(none)'}, newest {head} ({state})")
