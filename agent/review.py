"""The review agent: the tool-calling loop with the review queue's tools and its own system prompt.

``run_review`` has the shape of :func:`agent.loop.run_loop` minus the registry, so the command
agent can hand "review" requests to it. A review conversation keeps one :class:`ReviewState`
(which finding "that one" is, the skipped ones, a pending bulk delete) across its turns; pass the
same state every turn, or use :class:`ReviewSession`, which also keeps the history.

The system prompt and the tool list never change between turns, so llama.cpp's prompt cache
reuses them (see ARCHITECTURE.md on prompt-processing cost).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.events import EventSink, ToolCall, ToolResult
from agent.loop import ChatClient, LoopResult, run_loop
from tools.registry import Registry, ToolContext
from tools.review_tools import ReviewState, review_tools

SYSTEM = """You help a person fix flagged annotations, one finding at a time. Per user message call \
one tool, then reply in one short sentence saying what was done and what the next finding is.
- "start", "next", "show me" -> next_finding. "skip", "later" -> skip.
- "fine", "correct", "keep it" -> accept_as_is.
- "that one is a truck" -> relabel with label "truck".
- "wrong", "not an object" -> reject_annotation. "delete it", "remove" -> delete_annotation.
- a new box -> adjust_box; "redo the mask" -> resegment; add a missing object -> resegment.
- "delete all tiny boxes" -> delete_all_of_kind with kind "tiny_box" (a dry run): tell the user \
what would go and ask. Only when they then say yes, call it again with confirm true.
Never invent ids: the tools act on the finding shown last."""

HISTORY = 12  # messages kept after the system prompt: a review turn needs little context


def run_review(
    client: ChatClient,
    model: str,
    messages: list[dict[str, Any]],
    ctx: ToolContext,
    *,
    state: ReviewState | None = None,
    max_steps: int = 4,
    constrained: bool = False,
    options: Mapping[str, Any] | None = None,
    on_event: EventSink | None = None,
) -> LoopResult:
    """One review turn: the newest user message in ``messages`` (system prompt added when missing).

    Each call is one turn of the person's, counted in ``state.turn``: a bulk delete dry-run in an
    earlier call can be confirmed in this one, never in the call that made the dry run.
    """
    state = state if state is not None else ReviewState()
    state.turn += 1
    history = list(messages)
    if not history or history[0].get("role") != "system":
        history.insert(0, {"role": "system", "content": SYSTEM})
    registry = review_tools(state)
    if state.current is None:
        history += show_first(registry, ctx, on_event)
    return run_loop(
        client,
        model,
        history,
        registry,
        ctx,
        max_steps=max_steps,
        constrained=constrained,
        options=options,
        on_event=on_event,
    )


def show_first(registry: Registry, ctx: ToolContext, on_event: EventSink | None) -> list[dict[str, Any]]:
    """The ``next_finding`` call and its result as history, run before the model's first turn.

    Every review starts there, and a small model asked "review the flagged annotations with me"
    sometimes answers in words instead of calling it; this way it starts from a concrete finding,
    and the turn costs one model call less.
    """
    emit = on_event or (lambda event: None)
    emit(ToolCall("next_finding", {}))
    text = registry.get("next_finding")(ctx, {}).text()
    emit(ToolResult("next_finding", text, False))
    return [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "next_finding", "arguments": {}}}],
        },
        {"role": "tool", "tool_name": "next_finding", "content": text},
    ]


def trim(history: list[dict[str, Any]], keep: int = HISTORY) -> list[dict[str, Any]]:
    """The system prompt plus the newest ``keep`` messages, starting at a user message."""
    system, rest = history[:1], history[1:]
    if len(rest) <= keep:
        return history
    tail = rest[-keep:]
    while tail and tail[0].get("role") != "user":
        tail = tail[1:]
    return system + tail


@dataclass
class ReviewSession:
    """A multi-turn review conversation: one state, the running history, one call per message."""

    client: ChatClient
    model: str
    ctx: ToolContext
    state: ReviewState = field(default_factory=ReviewState)
    history: list[dict[str, Any]] = field(default_factory=lambda: [{"role": "system", "content": SYSTEM}])
    options: Mapping[str, Any] | None = None

    def send(self, text: str, on_event: EventSink | None = None) -> LoopResult:
        self.history.append({"role": "user", "content": text})
        result = run_review(
            self.client,
            self.model,
            self.history,
            self.ctx,
            state=self.state,
            options=self.options,
            on_event=on_event,
        )
        self.history = trim(result.messages)
        return result
