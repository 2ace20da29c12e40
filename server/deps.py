"""Dependencies of the routes: who is calling (the caller, resolved once per request) and what the
operations work on (the ops :class:`~ops.unit.Env`).

Routes do not check roles: each calls one operation of ``ops/`` with the caller, and the
operation checks :data:`ops.policy.POLICY` itself, so the API, the UI, the agent and the CLI are
held to the same table. What stays here is the guarantee that no route forgets to say how it is
guarded: every API route either is :data:`PUBLIC` or depends on :data:`CallerDep` (and passes the
caller to an operation). ``create_app`` refuses to start otherwise (default deny, checked where
it cannot be forgotten), and tests/server/test_permissions.py walks the same list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import annotated_types as at
from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy.engine import Engine
from sqlmodel import Session

from ops.caller import Caller
from ops.policy import Access, authorize
from ops.unit import Env
from server.auth import SESSION_COOKIE, BadCredentials, identify
from server.events import EventBus
from store.db import new_session

MAX_INT = 2**31 - 1  # ids, offsets and counts a client sends: PostgreSQL's INTEGER (SQLite's is 64-bit)
Id = Annotated[int, at.Ge(0), at.Le(MAX_INT)]


def get_session(request: Request) -> Iterator[Session]:
    engine: Engine = request.app.state.engine
    with new_session(engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_bus(request: Request) -> EventBus:
    return request.app.state.events


BusDep = Annotated[EventBus, Depends(get_bus)]


def get_env(request: Request) -> Env:
    return request.app.state.env


EnvDep = Annotated[Env, Depends(get_env)]


def current_principal(request: Request, session: Session, app_state: Any = None) -> Caller | None:
    """The caller (computed once per request, ``via="api"``), None when anonymous; 401 on a bad
    credential.

    ``app_state`` is the API app's state, for callers inside a mounted sub-app (the UI), whose
    ``request.app`` is the sub-app.
    """
    if not hasattr(request.state, "principal"):
        state = app_state or request.app.state
        try:
            request.state.principal = identify(
                session,
                headers={k.lower(): v for k, v in request.headers.items()},
                cookie=request.cookies.get(SESSION_COOKIE),
                peer=request.client.host if request.client else None,
                signer=state.signer,
                trusted_proxies=state.settings.trusted_proxies,
                local=state.local,
            )
        except BadCredentials as exc:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, str(exc), {"WWW-Authenticate": "Bearer"}
            ) from None
    return request.state.principal


def ui_identity(api: FastAPI) -> Callable[[Request], str | None]:
    """Gradio's ``auth_dependency`` for the UI mounted at / of ``api``: the caller's user name or None.

    Same identities as the API (token, session cookie, trusted Tailscale header, local user); a
    bad credential counts as no identity.
    """

    def identity(request: Request) -> str | None:
        with new_session(api.state.engine) as session:
            try:
                principal = current_principal(request, session, api.state)
            except HTTPException:
                return None
        return principal.username if principal is not None else None

    return identity


class Guard:
    """Base of the two ways a route is guarded; ``name`` shows in error messages and test ids."""

    name = "guard"


class _Public(Guard):
    name = "public"

    def __call__(self) -> None:
        return None


class _Caller(Guard):
    """The caller or None (anonymous): the operation decides whether that is enough.

    Resolved in a session of its own, closed at once: the operation opens the session it works
    in, and no connection is held for the life of a request (or of a streamed download).
    """

    name = "caller"

    def __call__(self, request: Request) -> Caller | None:
        with new_session(request.app.state.engine) as session:
            return current_principal(request, session)


PUBLIC = _Public()
CALLER = _Caller()
CallerDep = Annotated[Caller | None, Depends(CALLER)]


def _stream_access(project_id: Id, caller: CallerDep, session: SessionDep) -> Access:
    """Access to a project's live stream (``project.read``), for server/routes/events.py until its
    stream reads the outbox through an operation."""
    return authorize(session, caller, "project.read", project_id)


Viewer = Annotated[Access, Depends(_stream_access)]


@dataclass(frozen=True)
class ApiRoute:
    path: str
    methods: frozenset[str]
    guards: list[Guard]


def api_routes(routes: list[Any]) -> list[ApiRoute]:
    """Every APIRoute of an app with its full path (included routers resolved) and its guards."""
    out = []
    for context in iter_route_contexts(routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            out.append(ApiRoute(context.path or route.path, frozenset(route.methods), route_guards(route)))
    return out


def route_guards(route: APIRoute) -> list[Guard]:
    """The guards a route depends on (directly or through sub-dependencies), each once."""
    found: list[Guard] = []
    stack: list[Any] = [route.dependant]
    while stack:
        dependant = stack.pop()
        if isinstance(dependant.call, Guard) and dependant.call not in found:
            found.append(dependant.call)
        stack.extend(dependant.dependencies)
    return found


def check_rules(routes: list[Any]) -> None:
    """Refuse an app where an API route is neither PUBLIC nor takes the caller (or is both)."""
    bad = [
        f"{sorted(r.methods)} {r.path}: {[g.name for g in r.guards] or 'no guard'}"
        for r in api_routes(routes)
        if len(r.guards) != 1
    ]
    if bad:
        raise RuntimeError(
            "every API route must be PUBLIC or depend on CallerDep and call an operation (server.deps): "
            + "; ".join(bad)
        )
