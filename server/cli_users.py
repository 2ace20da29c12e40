"""`labelwright users ...` and `labelwright tokens ...`: accounts, project roles, API tokens.

Mount on the main CLI with ``app.add_typer(users_app, name="users")`` and
``app.add_typer(tokens_app, name="tokens")``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from sqlmodel import Session

from ops import names
from server.settings import get_settings
from store.db import new_session
from store.models import Role
from store.users import (
    create_token,
    create_user,
    get_user_by_name,
    list_tokens,
    revoke_token,
)

users_app = typer.Typer(help="Accounts and their roles in projects.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens (Authorization: Bearer <token>).", no_args_is_help=True)
console = Console(stderr=True)
NameArg = Annotated[str, typer.Argument(help="User name (a Tailscale login works as one).")]


@contextmanager
def _session() -> Iterator[Session]:
    engine = get_settings().open_store()
    try:
        with new_session(engine) as session:
            yield session
    finally:
        engine.dispose()


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(1)


def _user_id(session: Session, name: str) -> int:
    user = get_user_by_name(session, username=name)
    if user is None or user.id is None:
        raise _fail(f"no user named {name!r}; add one with `labelwright users add {name}`")
    return user.id


@users_app.command("add")
def add(
    name: NameArg,
    password: Annotated[str | None, typer.Option(help="Login password (omit: token/Tailscale only).")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    admin: Annotated[bool, typer.Option("--admin", help="Instance admin: admin of every project.")] = False,
) -> None:
    """Create an account."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    with _session() as session:
        try:
            user = create_user(session, username=names.user_name(name), password=password, is_admin=admin)
        except ValueError as exc:
            raise _fail(str(exc)) from None
    console.print(f"added user {user.username!r}" + (" (instance admin)" if admin else ""))


@users_app.command("grant")
def grant(
    name: NameArg,
    project: Annotated[str, typer.Option("--project", "-p", help="Project name.")],
    role: Annotated[Role, typer.Option(help="admin | reviewer | annotator | viewer")],
) -> None:
    """Give a user a role in a project (replaces the role they had there)."""
    from ops.projects import set_member
    from server.cli_ops import CLI, cli_env, project_id

    with cli_env() as env:
        set_member(env, CLI, project_id(env, project), username=name, role=role)
    console.print(f"{name} is now {role.value} in {project}")


@users_app.command("revoke")
def revoke_role(
    name: NameArg, project: Annotated[str, typer.Option("--project", "-p", help="Project name.")]
) -> None:
    """Remove a user's role in a project."""
    from ops.projects import remove_member
    from server.cli_ops import CLI, cli_env, project_id

    with cli_env() as env:
        remove_member(env, CLI, project_id(env, project), username=name)
    console.print(f"{name} has no role in {project} any more")


@tokens_app.command("create")
def create(
    name: NameArg,
    label: Annotated[str, typer.Option("--name", help="What the token is for.")] = "",
) -> None:
    """Issue an API token for a user; it is printed once (on stdout), never stored in clear."""
    with _session() as session:
        token, row = create_token(session, user_id=_user_id(session, name), name=label)
    console.print(f"token {row.id} for {name} (shown once, keep it secret):")
    typer.echo(token)


@tokens_app.command("list")
def list_(name: NameArg, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """A user's tokens (ids and names; the secrets are not kept)."""
    with _session() as session:
        rows = list_tokens(session, user_id=_user_id(session, name))
    data = [
        {"id": t.id, "name": t.name, "created_at": str(t.created_at), "revoked": t.revoked_at is not None}
        for t in rows
    ]
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        for t in data:
            console.print(
                f"{t['id']}\t{t['name'] or '-'}\t{t['created_at']}" + ("\trevoked" if t["revoked"] else "")
            )


@tokens_app.command("revoke")
def revoke(token_id: Annotated[int, typer.Argument(help="Token id (from `tokens list`).")]) -> None:
    """Revoke a token for good."""
    with _session() as session:
        if not revoke_token(session, token_id=token_id):
            raise _fail(f"no live token with id {token_id}")
    console.print(f"token {token_id} revoked")
