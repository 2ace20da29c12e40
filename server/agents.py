"""The server's agents: one command agent per conversation, shared by the UI chat, the API's chat
route and the MCP server, and one LLM per process, started on the first message.

A conversation (an ``AgentRun``) belongs to the person who started it (``ops.conversations``), and
its agent holds that conversation's pending change (``agent.pending``). An agent is looked up by
(user name, project, conversation), so one person's "yes" can only ever reach that person's own
pending change: another user sending "yes" talks to a conversation of their own. Messages to one
conversation are handled one at a time (a lock per agent): two at once would race for its
pending change.

The LLM (a configured Ollama, else the embedded llama.cpp model) starts on the first message, not
at server start, so the server comes up in seconds and never loads 1 GB for a team that only
reviews. The agents understand every language of :mod:`agent.lexicon` (English and Spanish): a
server's users do not all write English.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.events import EventSink
from agent.lexicon import LANGUAGES, Lexicon, merge
from ops.caller import Caller
from tools.registry import Registry, ToolContext

if TYPE_CHECKING:  # the agent and the LLM client load on the first message, not at server start
    from agent.command import CommandAgent, Turn
    from agent.llm import LLMHandle

DEFAULT_MODEL = "qwen2.5-coder:1.5b"  # agent.llm.DEFAULT_MODEL (tests/server/test_agents.py checks)

ToolContextFor = Callable[[Caller, int], ToolContext]


def llm_connector(settings: Any) -> Callable[[], LLMHandle]:
    """Connect as the server's settings say: their Ollama if it answers, else the embedded model."""

    def connect_llm() -> LLMHandle:
        from agent.llm import connect

        return connect(
            settings.models_dir, ollama_host=settings.ollama_host, threads=settings.llm_thread_count
        )

    return connect_llm


def server_tool_context(engine: Any, settings: Any, backends: Callable[[], Any]) -> ToolContextFor:
    """Tool contexts for the server's agents: its store, its data home, its one model stack. Jobs a
    tool queues are claimed by the server's runner (no ``on_job``)."""

    def context(caller: Caller, project_id: int) -> ToolContext:
        return ToolContext(
            engine=engine,
            project_id=project_id,
            home=settings.home,
            models_dir=settings.models_dir,
            caller=caller,
            backends_factory=backends,
        )

    return context


@dataclass
class _Slot:
    agent: CommandAgent
    lock: threading.Lock = field(default_factory=threading.Lock)


class AgentPool:
    """Command agents by (user name, project id, conversation id), and the LLM they share.

    Args:
        connect_llm: starts or finds the LLM (called once, on the first message).
        tool_context: the context a person's tools run in for a project.
        tools: the agent's tool registry (default: :func:`tools.catalog.command_tools`).
        model: the model name recorded on new conversations before the LLM is connected.
    """

    def __init__(
        self,
        connect_llm: Callable[[], LLMHandle],
        tool_context: ToolContextFor,
        tools: Callable[[], Registry] | None = None,
        model: str = DEFAULT_MODEL,
        lexicon: Lexicon | None = None,
    ) -> None:
        self.lexicon = lexicon or merge(*LANGUAGES.values())  # a server's users: every language shipped
        self._connect_llm = connect_llm
        self._tool_context = tool_context
        self._tools = tools
        self.model = model
        self._handle: LLMHandle | None = None
        self._agents: dict[tuple[str, int, int], _Slot] = {}
        self._current: dict[tuple[str, int], int] = {}  # the UI's conversation per person and project
        self._lock = threading.Lock()

    def tool_context(self, caller: Caller, project_id: int) -> ToolContext:
        """The context ``caller``'s tools run in for a project (also for surfaces without an agent)."""
        return self._tool_context(caller, project_id)

    def handle(self) -> LLMHandle:
        """The LLM, started on first use (raises ``agent.llm.LLMUnavailable`` if there is none)."""
        with self._lock:
            if self._handle is None:
                self._handle = self._connect_llm()
            return self._handle

    def _registry(self) -> Registry:
        if self._tools is not None:
            return self._tools()
        from tools.catalog import command_tools

        return command_tools()

    def _slot(self, caller: Caller, project_id: int, run_id: int | None) -> _Slot:
        from agent.command import CommandAgent

        handle = self.handle()
        with self._lock:
            if run_id is None:
                run_id = self._current.get((caller.username, project_id))
            slot = None if run_id is None else self._agents.get((caller.username, project_id, run_id))
            if slot is not None:
                return slot
            ctx = self._tool_context(caller.through("agent"), project_id)
            if run_id is None:  # the person's first message here: a new conversation
                agent = CommandAgent.start(handle.client, handle.model, ctx, self._registry(), **self._kw())
            else:  # theirs only (ops.conversations refuses anyone else's); its dry run pending again
                agent = CommandAgent.resume(
                    handle.client, handle.model, ctx, self._registry(), run_id, **self._kw()
                )
            slot = _Slot(agent)
            self._agents[(caller.username, project_id, agent.run_id)] = slot
            self._current.setdefault((caller.username, project_id), agent.run_id)
            return slot

    def _kw(self) -> dict[str, Any]:
        return {"lexicon": self.lexicon}

    def send(
        self,
        caller: Caller,
        project_id: int,
        message: str,
        on_event: EventSink | None = None,
        run_id: int | None = None,
    ) -> tuple[int, Turn]:
        """One message from ``caller`` to conversation ``run_id`` (None: their current one in the
        project, new on first use); returns the conversation id and what the message led to."""
        slot = self._slot(caller, project_id, run_id)
        with slot.lock:
            return slot.agent.run_id, slot.agent.send(message, on_event)

    def forget(self, caller: Caller, project_id: int, run_id: int) -> None:
        """Drop a deleted conversation's agent (and its pending change)."""
        with self._lock:
            self._agents.pop((caller.username, project_id, run_id), None)
            if self._current.get((caller.username, project_id)) == run_id:
                del self._current[(caller.username, project_id)]

    def close(self) -> None:
        """Stop the LLM if one was started (the embedded model runs in this process)."""
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None
