"""Dependencies of the routes: the store session, who is calling, and what they may do.

Every API route names exactly one access rule: :data:`PUBLIC`, :data:`AUTHENTICATED`,
:data:`INSTANCE_ADMIN`, or a project role through :class:`RequireRole` (the ``Viewer`` ...
``ProjectAdmin`` annotations). ``create_app`` refuses to start when a route has none (default
deny, checked where it cannot be forgotten), and the permission test walks the same rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy.engine import Engine
from sqlmodel import Session

from server.auth import SESSION_COOKIE, BadCredentials, Principal, identify
from server.events import EventBus
from store.db import new_session
from store.models import Role
from store.projects import get_project

RANK = {Role.viewer: 0, Role.annotator: 1, Role.reviewer: 2, Role.admin: 3}


def get_session(request: Request) -> Iterator[Session]:
    engine: Engine = request.app.state.engine
    with new_session(engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_bus(request: Request) -> EventBus:
    return request.app.state.events


BusDep = Annotated[EventBus, Depends(get_bus)]


def current_principal(request: Request, session: Session, app_state: Any = None) -> Principal | None:
    """The caller (computed once per request), None when anonymous; 401 on a bad credential.

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


def _signed_in(request: Request, session: Session) -> Principal:
    principal = current_principal(request, session)
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "authentication required: log in, or send 'Authorization: Bearer <token>'",
            {"WWW-Authenticate": "Bearer"},
        )
    return principal


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


class Rule:
    """Base of the access rules; ``name`` shows in the permission test's ids."""

    name = "rule"


class _Public(Rule):
    name = "public"

    def __call__(self) -> None:
        return None


class _Authenticated(Rule):
    name = "authenticated"

    def __call__(self, request: Request, session: SessionDep) -> Principal:
        return _signed_in(request, session)


class _InstanceAdmin(Rule):
    name = "instance_admin"

    def __call__(self, request: Request, session: SessionDep) -> Principal:
        principal = _signed_in(request, session)
        if not principal.is_admin:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "only an instance admin may do this")
        return principal


PUBLIC = _Public()
AUTHENTICATED = _Authenticated()
INSTANCE_ADMIN = _InstanceAdmin()


@dataclass(frozen=True)
class Access:
    """A caller allowed into a project, with their role there."""

    principal: Principal
    project_id: int
    role: Role

    @property
    def actor(self) -> str:
        return self.principal.username

    def at_least(self, role: Role) -> bool:
        return RANK[self.role] >= RANK[role]

    def require(self, role: Role, what: str) -> None:
        """For checks that depend on the request body (an annotator may not accept)."""
        if not self.at_least(role):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"{what} needs the {role.value} role; you are {self.role.value}"
            )


class RequireRole(Rule):
    """At least ``role`` in the project named by the ``project_id`` path parameter."""

    def __init__(self, role: Role) -> None:
        self.role = role
        self.name = role.value

    def __call__(self, project_id: int, request: Request, session: SessionDep) -> Access:
        principal = _signed_in(request, session)
        role = principal.role_in(session, project_id)
        if role is None or RANK[role] < RANK[self.role]:
            have = f"you are {role.value}" if role else "you are not a member"
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"needs the {self.role.value} role in project {project_id}; {have}"
            )
        if get_project(session, project_id=project_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no project with id {project_id}")
        return Access(principal, project_id, role)


Viewer = Annotated[Access, Depends(RequireRole(Role.viewer))]
Annotator = Annotated[Access, Depends(RequireRole(Role.annotator))]
Reviewer = Annotated[Access, Depends(RequireRole(Role.reviewer))]
ProjectAdmin = Annotated[Access, Depends(RequireRole(Role.admin))]
CurrentUser = Annotated[Principal, Depends(AUTHENTICATED)]
InstanceAdmin = Annotated[Principal, Depends(INSTANCE_ADMIN)]


@dataclass(frozen=True)
class ApiRoute:
    path: str
    methods: frozenset[str]
    rules: list[Rule]


def api_routes(routes: list[Any]) -> list[ApiRoute]:
    """Every APIRoute of an app with its full path (included routers resolved) and access rules."""
    out = []
    for context in iter_route_contexts(routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            out.append(ApiRoute(context.path or route.path, frozenset(route.methods), route_rules(route)))
    return out


def route_rules(route: APIRoute) -> list[Rule]:
    """The access rules a route depends on (directly or through sub-dependencies)."""
    found: list[Rule] = []
    stack: list[Any] = [route.dependant]
    while stack:
        dependant = stack.pop()
        if isinstance(dependant.call, Rule):
            found.append(dependant.call)
        stack.extend(dependant.dependencies)
    return found


def check_rules(routes: list[Any]) -> None:
    """Refuse an app where an API route has no access rule, or more than one."""
    bad = [
        f"{sorted(r.methods)} {r.path}: {len(r.rules)} rules" for r in api_routes(routes) if len(r.rules) != 1
    ]
    if bad:
        raise RuntimeError("every API route needs exactly one access rule (server.deps): " + "; ".join(bad))


@contextmanager
def bad_input() -> Iterator[None]:
    """Turn the store's ``ValueError`` (bad input, nothing written) into a 422 with its message."""
    try:
        yield
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


def not_found(what: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no {what}")
