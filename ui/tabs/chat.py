"""The chat panel: the agent's steps as gr.Chatbot messages, tool calls collapsed under a title."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

from agent.events import AssistantText, Event, Final, ToolCall, ToolResult
from ops.caller import Caller
from ui.services import NO_AGENT_HINT, UIServices

Message = dict[str, Any]
_DONE = object()


def _call_title(event: ToolCall) -> str:
    args = json.dumps(event.args, ensure_ascii=False)
    return f"🛠 {event.name} {args if len(args) <= 120 else args[:117] + '...'}"


def apply_event(history: list[Message], event: Event) -> None:
    """Add one agent event to the chat: a call opens a collapsed step, its result fills it."""
    if isinstance(event, ToolCall):
        history.append(
            {
                "role": "assistant",
                "content": "…",
                "metadata": {"title": _call_title(event), "status": "pending"},
            }
        )
    elif isinstance(event, ToolResult):
        step = next(
            (m for m in reversed(history) if m.get("metadata", {}).get("status") == "pending"),
            None,
        )
        if step is None:
            step = {"role": "assistant", "metadata": {"title": f"🛠 {event.name}"}}
            history.append(step)
        step["content"] = event.text
        step["metadata"]["status"] = "done"
        if event.error:
            step["metadata"]["title"] = "❌ " + step["metadata"]["title"].removeprefix("🛠 ")
    elif isinstance(event, AssistantText):
        history.append({"role": "assistant", "content": event.text})
    elif isinstance(event, Final):
        note = " (stopped at the step limit)" if event.hit_step_limit else ""
        history.append({"role": "assistant", "content": event.text + note})


def run_chat(
    services: UIServices, caller: Caller | None, project_id: int | None, message: str, history: list[Message]
) -> Iterator[list[Message]]:
    """Yield the growing chat while the agent works (it runs in a thread; events arrive queued).

    The conversation is the caller's own: another person in the same project talks to another
    agent, and cannot confirm this one's pending change."""
    history = list(history or [])
    text = message.strip()
    if not text:
        yield history
        return
    history.append({"role": "user", "content": text})
    if project_id is None:
        history.append({"role": "assistant", "content": "Pick or create a project first (top of the page)."})
        yield history
        return
    if caller is None:
        history.append({"role": "assistant", "content": "Sign in first (/login) to talk to the agent."})
        yield history
        return
    if services.chat is None:
        history.append({"role": "assistant", "content": NO_AGENT_HINT})
        yield history
        return
    chat = services.chat
    events: queue.Queue[Any] = queue.Queue()

    def work() -> None:
        try:
            chat(caller, project_id, text, events.put)
        except Exception as exc:  # shown to the person; the server log has the traceback too
            events.put(exc)
            raise
        finally:
            events.put(_DONE)

    threading.Thread(target=work, name="labelwright-chat", daemon=True).start()
    yield history
    while (item := events.get()) is not _DONE:
        if isinstance(item, Exception):
            history.append({"role": "assistant", "content": f"The agent failed: {item}"})
        else:
            apply_event(history, item)
        yield history
