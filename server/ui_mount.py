"""Mounting the Gradio UI at / of the API app, with the agent behind its chat panel.

The UI gets services, never settings (ui/ must not import server/): this module is where the
server turns its settings into those services.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.engine import Engine

from agent.events import EventSink
from ops.caller import Caller, local_caller
from server.agents import AgentPool, llm_connector
from server.settings import Settings
from store.db import new_session
from store.users import get_user_by_name


def ui_callers(engine: Engine, *, local: bool) -> Callable[[str | None], Caller | None]:
    """Resolves Gradio's ``request.username`` (set by the login ``auth_dependency``) to a Caller.

    On a loopback server without login there is no user name and the person is the explicit
    local user; on a network bind no name means nobody signed in (the operations refuse), and a
    name is looked up each time, so a user deleted meanwhile is refused at once.
    """

    def resolve(username: str | None) -> Caller | None:
        if username is None:
            return local_caller(via="ui") if local else None
        with new_session(engine) as session:
            user = get_user_by_name(session, username=username)
        if user is None or user.id is None:
            return None
        return Caller(user.username, user.id, user.is_admin, via="ui", credential="session")

    return resolve


class AgentChat:
    """``chat(caller, project_id, message, on_event)`` for the UI: the person's current conversation
    in the project, from the server's one agent pool (:mod:`server.agents`), shared with the API's
    chat route, so one user's "yes" can only ever confirm that user's own pending change.

    Without ``pool`` (a UI served on its own, in tests) it keeps a pool of its own.
    """

    def __init__(self, settings: Settings, services: Any, pool: AgentPool | None = None) -> None:
        self.pool = pool or AgentPool(llm_connector(settings), services.tool_context)

    def __call__(self, caller: Caller, project_id: int, message: str, on_event: EventSink) -> Any:
        return self.pool.send(caller, project_id, message, on_event)[1]

    def close(self) -> None:
        """Stop the LLM if one was started (the embedded model runs in this process)."""
        self.pool.close()


LOGIN_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>labelwright: sign in</title>
<style>body{font-family:sans-serif;max-width:22rem;margin:4rem auto}input,button{display:block;width:100%;
margin:.4rem 0;padding:.5rem;font-size:1rem}#error{color:#b00}</style></head><body>
<h1>labelwright</h1><form id="f">
<input name="username" placeholder="user name" autocomplete="username" required>
<input name="password" type="password" placeholder="password" autocomplete="current-password" required>
<button>Sign in</button><p id="error"></p></form><script>
document.getElementById("f").onsubmit = async (e) => {
  e.preventDefault();
  const data = Object.fromEntries(new FormData(e.target));
  const r = await fetch("/api/v1/auth/login", {method: "POST", headers: {"Content-Type": "application/json"},
                                               body: JSON.stringify(data)});
  if (r.ok) { location.href = "/"; return; }
  document.getElementById("error").textContent = (await r.json()).detail;
};
</script></body></html>"""


def add_login_page(app: FastAPI) -> None:
    """On a network bind the UI needs an identity: a browser without one is sent to /login.

    The form posts to the API's login route, which sets the signed session cookie the UI's
    ``auth_dependency`` accepts (tokens and trusted Tailscale headers work without it).
    """
    from server.deps import ui_identity

    identity = ui_identity(app)

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page() -> str:
        return LOGIN_PAGE

    app.add_middleware(LoginRedirect, identity=identity)


class LoginRedirect:
    """Plain ASGI (not BaseHTTPMiddleware, which breaks streamed responses on client disconnect)."""

    def __init__(self, app: Any, identity: Callable[[Request], str | None]) -> None:
        self.app = app
        self.identity = identity

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == "/":
            if self.identity(Request(scope)) is None:
                await RedirectResponse("/login", status_code=303)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def mount_ui(settings: Settings, app: FastAPI) -> None:
    """Mount ``ui.app.build_ui`` at / with the app's engine and its one model stack.

    The UI queues jobs in the store (``ops.jobs``); the app's runner claims them from there.
    """
    import gradio as gr

    from server.deps import ui_identity
    from ui.app import build_ui
    from ui.services import UIServices

    services = UIServices(
        engine=app.state.engine,
        home=settings.home,
        models_dir=settings.models_dir,
        backends=app.state.backends,  # the process's one model stack (server.app.SharedBackends)
        caller_for=ui_callers(app.state.engine, local=app.state.local),
        stack=settings.stack,
    )
    services.chat = AgentChat(settings, services, pool=app.state.agents)  # shared with the API
    if not app.state.local:
        add_login_page(app)
    exports = settings.home / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    gr.mount_gradio_app(
        app,
        build_ui(services),
        path="/",
        allowed_paths=[str(exports)],
        auth_dependency=None if app.state.local else ui_identity(app),
    )
