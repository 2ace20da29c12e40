"""What the UI is handed by whoever mounts it (the server, or a test): no settings, no server imports.

The UI is a thin adapter over :mod:`ops`: every handler resolves the signed-in person
(:meth:`UIServices.caller`) and calls an operation with them, so the project list, the roles, the
version checks and the live events are the same as on every other surface. Tools it runs (the
segmenter) get a :class:`tools.registry.ToolContext` carrying that caller.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from agent.events import EventSink
from ops.caller import Caller, local_caller
from ops.unit import Env
from tools.registry import ToolContext

# chat(caller, project_id, message, on_event): runs one agent command for that person in that
# project, reporting its steps to on_event. Conversations are the caller's own.
ChatFn = Callable[[Caller, int, str, EventSink], Any]
# caller_for(user name from the request, or None): the Caller, or None for nobody signed in.
CallerFor = Callable[[str | None], Caller | None]

NO_AGENT_HINT = (
    "No LLM is connected to this server, so I cannot act on chat commands yet. "
    "Start the local one with `labelwright llm serve` (or point the server at an Ollama) and "
    "restart `labelwright serve`. Meanwhile **Label all images** above does the same job: "
    "type the classes, pick a threshold and press it."
)


def local_only(username: str | None) -> Caller | None:
    """The resolver of a loopback server without login: everyone at this machine is the local user."""
    return local_caller(via="ui") if username is None else None


@dataclass
class UIServices:
    """The handles the UI needs.

    Attributes:
        engine: the store's database.
        home: the data home image paths are relative to; exports are written under it.
        models_dir: the model weights cache (shown to the user, passed to tools).
        backends: the process's one model stack (shared with the job runner and the agent's
            tools), built on its first call, so models load once and embeddings stay cached.
        caller_for: resolves the request's user name (Gradio's ``request.username``) to a Caller.
        chat: the agent, or None when no LLM is available (the chat then says how to start one).
        on_job: told the id of a job the UI queued (e.g. to wake the runner); the runner also
            finds it in the store by itself.
        stack: the model stack's name, shown in the header.
    """

    engine: Engine
    home: Path
    models_dir: Path
    backends: Callable[[], Any]
    caller_for: CallerFor = local_only
    chat: ChatFn | None = None
    on_job: Callable[[int], None] | None = None
    stack: str = "lite"
    acted: dict[str, float] = field(default_factory=dict)  # page (session hash) -> last event start

    @property
    def env(self) -> Env:
        return Env(self.engine, self.home)

    def caller(self, request: Any) -> Caller | None:
        """The person behind a Gradio event (its ``gr.Request``); None when nobody is signed in.

        Every handler a person triggers asks this first, so it also notes when the page last
        acted: the live redraw (:func:`ui.live.clobbers`) holds back while a page is acting, so a
        background redraw drawn from older page state never undoes a click made meanwhile.
        """
        page = getattr(request, "session_hash", None)
        if page:
            if len(self.acted) > 10_000:  # pages closed long ago; keep the map bounded
                self.acted.clear()
            self.acted[page] = time.monotonic()
        return self.background_caller(request)

    def background_caller(self, request: Any) -> Caller | None:
        """The caller of an event the page fires by itself (the live timer): not an action."""
        return self.caller_for(getattr(request, "username", None) if request is not None else None)

    def tool_context(self, caller: Caller, project_id: int) -> ToolContext:
        return ToolContext(
            engine=self.engine,
            project_id=project_id,
            home=self.home,
            models_dir=self.models_dir,
            caller=caller,
            backends_factory=self.backends,
            on_job=self.on_job,
        )
