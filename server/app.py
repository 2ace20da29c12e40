"""The FastAPI application: REST API under /api/v1, live events, auth, the job runner.

``create_app(settings)`` wires everything from settings; the UI (ui.app.build_ui) is mounted at /
by the integrator, until then / is a small landing page.
"""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy.engine import Engine

from ops.annotations import PreconditionRequired
from ops.errors import OpError, status_of
from ops.unit import Env
from server.agents import AgentPool, llm_connector, server_tool_context
from server.auth import SESSION_COOKIE, LoginThrottle, SessionSigner, load_secret
from server.deps import PUBLIC, api_routes, check_rules
from server.events import EventBus, OutboxFollower
from server.jobs import JobHandler, JobRunner
from server.mcp_server import mount_mcp
from server.routes import ROUTERS
from server.routes.schema import errors
from server.security import BULK_BODY_LIMIT, BodyLimitMiddleware, GuardMiddleware, MethodMiddleware
from server.settings import Settings
from store.errors import StaleWriteError, StoreError

API_PREFIX = "/api/v1"
log = logging.getLogger("labelwright.server")


class SharedBackends:
    """The process's one model stack: the UI, the agent's tools and the job runner all use it, so
    models load once and embedding caches are shared. Built on first use."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._backends: Any = None
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        with self._lock:
            if self._backends is None:
                self._backends = self._factory()
            return self._backends


def default_handlers(settings: Settings, backends: Callable[[], Any]) -> dict[str, JobHandler]:
    from tools import propagate_job, video_label
    from tools.auto_label import KIND
    from tools.overlapped_label import OverlappedLabelJob
    from tools.training import KIND as TRAIN
    from tools.training import TrainJob

    return {
        KIND: OverlappedLabelJob(home=settings.home, backends_factory=backends, batch=settings.label_batch),
        video_label.KIND: video_label.VideoLabelJob(home=settings.home, backends_factory=backends),
        propagate_job.KIND: propagate_job.PropagateJob(home=settings.home, backends_factory=backends),
        TRAIN: TrainJob(home=settings.home, models_dir=settings.models_dir.expanduser()),
    }


def refresh_planner_stats(engine: Engine) -> None:
    """Give SQLite's planner table statistics once (sampled: fast at 1M rows), then keep them fresh.

    Without statistics the planner reads "annotations of image X in project P" through the
    project index, a scan of the whole project (measured: 12 ms at 40k annotations, linear in
    the project), instead of the per-image index (0.5 ms). PostgreSQL's autovacuum analyzes by itself.
    """
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as connection:
        has_stats = (
            connection.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first()
            and connection.exec_driver_sql("SELECT 1 FROM sqlite_stat1 WHERE tbl = 'annotation'").first()
        )
        if has_stats:
            connection.exec_driver_sql("PRAGMA optimize")
        else:
            connection.exec_driver_sql("PRAGMA analysis_limit=1000")
            connection.exec_driver_sql("ANALYZE")
        connection.commit()


def create_app(
    settings: Settings,
    *,
    job_handlers: dict[str, JobHandler] | None = None,
    mount_ui: Callable[[FastAPI], None] | None = None,
) -> FastAPI:
    """The app for ``settings``.

    Args:
        job_handlers: replace the auto-label handler (tests use fake vision backends).
        mount_ui: called with the app once the API is in place, to mount the UI at / (e.g.
            ``gr.mount_gradio_app(app, build_ui(services), path="/", auth_dependency=ui_identity(app))``);
            without it / is a small landing page.
    """
    local = settings.is_local  # raises for local_mode on a network bind: fail before serving
    engine = settings.open_store()
    bus = EventBus()
    follower = OutboxFollower(engine, bus)
    from server.cli_label import backends_factory

    backends = SharedBackends(backends_factory(settings.stack, settings.models_dir))
    runner = JobRunner(engine, job_handlers or default_handlers(settings, backends))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        refresh_planner_stats(engine)
        follower.start()
        runner.start()  # it writes each job step's event in the step's transaction
        try:
            async with app.state.mcp.running():  # the MCP endpoint's sessions (server.mcp_server)
                yield
        finally:
            runner.stop()
            app.state.agents.close()  # the LLM, if a chat started one
            follower.stop()

    app = FastAPI(title="labelwright", version="0.1.0", lifespan=lifespan, openapi_url="/openapi.json")
    app.state.settings = settings
    app.state.engine = engine
    app.state.env = Env(engine, settings.home)
    app.state.events = bus
    app.state.runner = runner
    app.state.backends = backends
    app.state.agents = AgentPool(llm_connector(settings), server_tool_context(engine, settings, backends))
    app.state.local = local
    app.state.login_throttle = LoginThrottle()
    app.state.signer = SessionSigner(
        load_secret(settings.session_secret, settings.home), settings.session_max_age_s
    )
    app.add_middleware(BodyLimitMiddleware, prefix=API_PREFIX, limits=body_limits())
    app.add_middleware(MethodMiddleware, prefix=API_PREFIX, routes=lambda: api_routes(app.routes))
    app.add_middleware(GuardMiddleware, settings=settings)  # added last: runs first
    app.add_exception_handler(StaleWriteError, _stale)
    app.add_exception_handler(OpError, _refused)
    app.add_exception_handler(StoreError, _conflict)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(Exception, _internal)
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)

    @app.get(
        f"{API_PREFIX}/health", dependencies=[Depends(PUBLIC)], tags=["meta"], responses=errors(caller=False)
    )
    def health() -> dict[str, Any]:
        return {"status": "ok", "stack": settings.stack, "auth": "local" if local else "required"}

    app.openapi = lambda: openapi_with_security(app)  # type: ignore[method-assign]
    check_rules(app.routes)  # the API's routes; a mounted UI guards itself (auth_dependency)
    mount_mcp(app)  # /mcp, token required (server.mcp_server)
    if mount_ui is not None:
        mount_ui(app)
        return app

    @app.get("/", response_class=HTMLResponse, dependencies=[Depends(PUBLIC)], include_in_schema=False)
    def index() -> str:
        mode = "local (no login)" if local else "login required"
        return (
            "<!doctype html><html><head><meta charset='utf-8'><title>labelwright</title></head>"
            f"<body><h1>labelwright</h1><p>Model stack: {html.escape(settings.stack)}; access: {mode}.</p>"
            "<p>REST API: <a href='/docs'>/docs</a> (OpenAPI at <a href='/openapi.json'>/openapi.json</a>)."
            "</p></body></html>"
        )

    return app


def body_limits() -> list[tuple[str, int | None]]:
    """Request body caps by path (first match wins; the rest get ``DEFAULT_BODY_LIMIT``): image
    and annotation file uploads stream under their own ``max_upload_bytes``; bulk annotation
    routes take more."""
    project = rf"{API_PREFIX}/projects/[^/]+"
    return [
        (rf"{project}/images", None),
        (rf"{project}/imports/[^/]+", None),
        (rf"{project}/annotations(/review|/delete|/relabel)?", BULK_BODY_LIMIT),
    ]


SECURITY_SCHEMES = {
    "bearerToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token (`labelwright users token NAME` or POST /api/v1/auth/tokens).",
    },
    "sessionCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "The signed session cookie set by POST /api/v1/auth/login.",
    },
    "tailscaleUser": {
        "type": "apiKey",
        "in": "header",
        "name": "Tailscale-User-Login",
        "description": "Set by a Tailscale Serve proxy; honoured only from the configured trusted_proxies.",
    },
}


def openapi_with_security(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus the ways to authenticate: each route that takes the caller accepts
    any one of them (or none, as the local user of a loopback server without login); PUBLIC
    routes need none."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        routes = api_routes(app.routes)
        public = {(r.path, m.lower()) for r in routes if PUBLIC in r.guards for m in r.methods}
        anyone = [{}, *({name: []} for name in SECURITY_SCHEMES)]
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                operation["security"] = [] if (path, method) in public else anyone
        app.openapi_schema = schema
    return app.openapi_schema


async def _stale(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StaleWriteError)
    return JSONResponse(
        status_code=409,
        content={
            "detail": str(exc),
            "annotation_id": exc.annotation_id,
            "current_version": exc.actual_version,
            "changed_by": exc.changed_by,
        },
    )


async def _refused(_request: Request, exc: Exception) -> JSONResponse:
    """An operation's refusal as its status (ops.errors.status_of) with the operation's sentence."""
    code = 428 if isinstance(exc, PreconditionRequired) else status_of(exc)
    headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
    return JSONResponse(status_code=code, content={"detail": str(exc)}, headers=headers)


async def _invalid(_request: Request, exc: Exception) -> JSONResponse:
    """422 with one readable sentence (``body.bbox: Field required; query.limit: ...``)."""
    assert isinstance(exc, RequestValidationError)
    parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors()]
    return JSONResponse(status_code=422, content={"detail": "; ".join(parts) or "invalid request"})


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        status_code=500, content={"detail": f"internal error ({type(exc).__name__}); see the server log"}
    )


async def _conflict(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=409, content={"detail": str(exc)})
