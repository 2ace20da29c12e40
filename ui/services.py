"""What the UI is handed by whoever mounts it (the server, or a test): no settings, no server imports.

The UI reads and writes the store directly through repository functions (the same ones the REST
API calls), runs tools through a :class:`tools.registry.ToolContext` it builds from these services,
and hands long work to the job runner it is given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.engine import Engine

from agent.events import EventSink
from tools.registry import ToolContext


class JobControl(Protocol):
    """The part of the job runner the UI uses (``server.jobs.JobRunner`` has exactly this)."""

    def enqueue(self, project_id: int, kind: str, params: dict[str, Any]) -> int: ...

    def cancel(self, job_id: int) -> Any: ...


# chat(project_id, message, on_event): runs one agent command, reporting its steps to on_event.
ChatFn = Callable[[int, str, EventSink], Any]

NO_AGENT_HINT = (
    "No LLM is connected to this server, so I cannot act on chat commands yet. "
    "Start the local one with `labelwright llm serve` (or point the server at an Ollama) and "
    "restart `labelwright serve`. Meanwhile **Label all images** above does the same job: "
    "type the classes, pick a threshold and press it."
)


@dataclass
class UIServices:
    """The handles the UI needs.

    Attributes:
        engine: the store's database.
        home: the data home image paths are relative to; exports are written under it.
        models_dir: the model weights cache (shown to the user, passed to tools).
        backends_factory: builds the vision backends on first use (e.g. the lite stack).
        jobs: enqueues and cancels background jobs; progress is read from the store.
        chat: the agent, or None when no LLM is available (the chat then says how to start one).
        actor: the name written into history for edits made in the UI.
        stack: the model stack's name, shown in the header.
    """

    engine: Engine
    home: Path
    models_dir: Path
    backends_factory: Callable[[], Any]
    jobs: JobControl
    chat: ChatFn | None = None
    actor: str = "ui"
    stack: str = "lite"
    _backends: Any = field(default=None, init=False, repr=False)

    @property
    def backends(self) -> Any:
        """One backends object for the whole UI, so models load once and embeddings stay cached."""
        if self._backends is None:
            self._backends = self.backends_factory()
        return self._backends

    def tool_context(self, project_id: int) -> ToolContext:
        return ToolContext(
            engine=self.engine,
            project_id=project_id,
            home=self.home,
            models_dir=self.models_dir,
            actor=self.actor,
            backends_factory=lambda: self.backends,
            enqueue=lambda kind, params: self.jobs.enqueue(project_id, kind, params),
        )
