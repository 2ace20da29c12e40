"""What every CLI verb needs to call an operation: the environment, the caller, and how a refusal
is printed.

The CLI acts as the local user (``ops.caller.local_caller``): whoever can run it on this machine
can read the data home anyway, so it is an instance admin, recorded in history as ``local`` via
``cli``. Names are still checked by the operations, exactly as for every other surface.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from ops.caller import Caller, local_caller
from ops.errors import OpError
from ops.projects import find_project
from ops.unit import Env
from server.settings import get_settings
from store.errors import StaleWriteError

console = Console(stderr=True)
CLI: Caller = local_caller("cli")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


def fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)


@contextmanager
def cli_env() -> Iterator[Env]:
    """The data home's database as an ops environment; refusals become an error line and exit 1."""
    settings = get_settings()
    engine = settings.open_store()
    try:
        yield Env(engine, settings.home)
    except (OpError, StaleWriteError) as exc:
        raise fail(str(exc)) from None
    finally:
        engine.dispose()


def project_id(env: Env, name: str) -> int:
    """The id of the project called ``name``, or an error that says how to create it."""
    try:
        return find_project(env, CLI, name)
    except OpError:
        raise fail(
            f"no project named {name!r}; create one with `labelwright ingest SOURCE --project {name}`"
        ) from None
