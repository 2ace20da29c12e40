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
from server.auth import LoginThrottle, SessionSigner, load_secret
from server.deps import PUBLIC, check_rules
from server.events import EventBus, OutboxFollower
from server.jobs import JobHandler, JobRunner, ProgressEvent
from server.mcp_server import mount_mcp
from server.routes import ROUTERS
from server.security import GuardMiddleware
from server.settings import Settings
from store.db import new_session, open_engine
from store.errors import StaleWriteError, StoreError
from store.events import add_event
from store.jobs import get_job

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
    from tools import video_label
    from tools.auto_label import KIND, LabelJob

    return {
        KIND: LabelJob(home=settings.home, backends_factory=backends),
        video_label.KIND: video_label.VideoLabelJob(home=settings.home, backends_factory=backends),
    }


def job_events(engine: Engine) -> Any:
    """A runner subscriber that writes job progress into the event outbox (the follower publishes
    it, so other processes see it too)."""
    owners: dict[int, tuple[int, str]] = {}  # job id -> (project id, who asked for it)

    def publish(event: ProgressEvent) -> None:
        with new_session(engine) as session:
            if event.job_id not in owners:
                job = get_job(session, job_id=event.job_id)
                if job is None:
                    return
                owners[event.job_id] = (job.project_id, str(job.params.get("requested_by", "")))
            project_id, actor = owners[event.job_id]
            data = {"state": event.state, "done": event.done, "total": event.total, "rate": event.rate}
            if event.error:
                data["error"] = event.error
            add_event(session, project_id=project_id, kind="job", action=event.state, ids=[event.job_id],
                      actor=actor, via="job", data=data)  # fmt: skip
            session.commit()

    return publish


def refresh_planner_stats(engine: Engine) -> None:
    """Give SQLite's planner table statistics once (sampled: fast at 1M rows), then keep them fresh.

    Without statistics the planner reads "annotations of image X in project P" through the
    project index, a scan of the whole project (measured: 12 ms at 40k annotations, linear in
    the project), instead of the per-image index (0.5 ms).
    """
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
    engine = open_engine(settings.db_path, durable=settings.durable)
    bus = EventBus()
    follower = OutboxFollower(engine, bus)
    from server.cli_label import backends_factory

    backends = SharedBackends(backends_factory(settings.stack, settings.models_dir))
    runner = JobRunner(
        engine, job_handlers or default_handlers(settings, backends), lock_dir=settings.home / "jobs"
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        refresh_planner_stats(engine)
        follower.start()
        unsubscribe = runner.subscribe(job_events(engine))
        runner.start()
        try:
            async with app.state.mcp.running():  # the MCP endpoint's sessions (server.mcp_server)
                yield
        finally:
            runner.stop()
            app.state.agents.close()  # the LLM, if a chat started one
            unsubscribe()
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
    app.add_middleware(GuardMiddleware, settings=settings)
    app.add_exception_handler(StaleWriteError, _stale)
    app.add_exception_handler(OpError, _refused)
    app.add_exception_handler(StoreError, _conflict)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(Exception, _internal)
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)

    @app.get(f"{API_PREFIX}/health", dependencies=[Depends(PUBLIC)], tags=["meta"])
    def health() -> dict[str, Any]:
        return {"status": "ok", "stack": settings.stack, "auth": "local" if local else "required"}

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
