"""The review agent: the tool-calling loop with the review queue's tools and its own system prompt.

``run_review`` has the shape of :func:`agent.loop.run_loop` minus the registry, so the command
agent can hand "review" requests to it. A review conversation keeps one :class:`ReviewState`
(which finding "that one" is, the skipped ones, a pending bulk delete) across its turns; pass the
same state every turn, or use :class:`ReviewSession`, which also keeps the history.

The queue's everyday words ("next", "skip", "fine as it is", "that one is a truck", "delete it",
"delete all tiny boxes", "yes") are understood without the model (:func:`parse_command`): on
two CPU cores a model turn costs seconds, and Qwen2.5-Coder-1.5B, shown a finding and asked to
start, sometimes acted on it instead of describing it. Anything else goes to the model.

The system prompt and the tool list never change between turns, so llama.cpp's prompt cache
reuses them (see ARCHITECTURE.md on prompt-processing cost).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.events import EventSink, Final, ToolCall, ToolResult
from agent.loop import CallRecord, ChatClient, LoopResult, run_loop
from agent.pending import PendingGuard
from tools.registry import Registry, ToolContext, ToolError
from tools.review_tools import ReviewState, review_tools

SYSTEM = """You help a person fix flagged annotations, one finding at a time. For each user message \
call one tool, then say in one short sentence what was done and what the next finding is.
Examples, written as the calls you make:
"show me" -> {"name": "next_finding", "arguments": {}}
"later" -> {"name": "skip", "arguments": {}}
"keep it" -> {"name": "accept_as_is", "arguments": {}}
"this is really a truck" -> {"name": "relabel", "arguments": {"label": "truck"}}
"not an object" -> {"name": "reject_annotation", "arguments": {}}
"remove it" -> {"name": "delete_annotation", "arguments": {}}
"the box should be 10,20 to 200,300" -> {"name": "adjust_box", "arguments": {"box": [10, 20, 200, 300]}}
"redo the mask" or "add the missing one" -> {"name": "resegment", "arguments": {}}
"get rid of all tiny boxes" -> {"name": "delete_all_of_kind", "arguments": {"kind": "tiny_box"}}: a dry \
run; tell the user what would go and that a yes applies it.
"show me the hardest ones" -> {"name": "hardest_proposals", "arguments": {}}: the proposals most \
likely wrong first.
The tools act on the finding shown last; never invent ids."""

HISTORY = 12  # messages kept after the system prompt: a review turn needs little context

# Words a person uses for a finding kind -> the kind ("delete all tiny boxes" -> tiny_box).
KIND_WORDS = {
    "tiny": "tiny_box",
    "small": "tiny_box",
    "degenerate": "degenerate_box",
    "duplicate": "duplicate",
    "spill": "mask_spills",
    "loose": "loose_box",
    "conflict": "class_conflict",
    "mismatch": "label_mismatch",
    "wrong": "label_mismatch",
    "sparse": "sparse_mask",
    "fragment": "fragmented_mask",
    "outside": "box_outside_image",
    "thin": "extreme_aspect",
    "aspect": "extreme_aspect",
    "empty": "empty_mask",
}
_POLITE = re.compile(r"^(?:please|ok(?:ay)?|so|now|and|then)[, ]+|[.!]+$|[, ]+please$")
_START = re.compile(r"^(?:start|begin|review\b.*|let'?s (?:start|review|go).*)$")
_NEXT = re.compile(r"^(?:next(?: one)?|show(?: me)?(?: the)?(?: next)?(?: one)?|continue|go on)$")
_SKIP = re.compile(r"^(?:skip(?: it| this| that)?(?: one)?|later|not now|pass)$")
_ACCEPT = re.compile(
    r"^(?:(?:that|this|it)(?: one)?(?: is|'s)? )?(?:fine|correct|right|good|ok|okay)(?: as it is)?$"
    r"|^(?:keep it|accept(?: it)?|looks (?:fine|good|right)|leave it(?: as it is)?)$"
)
_RELABEL = re.compile(
    r"^(?:(?:that|this|it)(?: one)?(?: is|'s)|it should be|relabel(?: it)?(?: as| to)?) "
    r"(?:(?:actually|really) )?(?:an? |the )?(?P<label>[a-z][a-z -]{0,40})$"
)
_DELETE = re.compile(r"^(?:delete|remove|drop)(?: it| this| that)?(?: one)?$")
_REJECT = re.compile(
    r"^(?:reject(?: it)?|(?:(?:that|this|it)(?: one)?(?: is|'s) )?(?:wrong|bad|junk|not an object))$"
)
_DELETE_ALL = re.compile(r"^(?:delete|remove|drop) (?:all|every)(?: of)?(?: the)? (?P<what>.+)$")


_REVIEW_REQUEST = re.compile(
    r"^\s*(?:please\s+|let'?s\s+)?review\b|\breview\b.*\b(?:flag|finding|queue|audit)", re.I
)


def is_review_request(text: str) -> bool:
    """Whether a chat message asks for a review session ("review the flagged annotations with me")."""
    return bool(_REVIEW_REQUEST.search(text))


def parse_command(text: str, state: ReviewState) -> tuple[str, dict[str, Any]] | None:
    """The tool call an everyday review phrase means, or None when it needs the model."""
    words = _POLITE.sub("", " ".join(text.lower().split())).strip()
    if _START.match(words) or _NEXT.match(words):
        return "next_finding", {}
    if _SKIP.match(words):
        return "skip", {}
    if _ACCEPT.match(words):
        return "accept_as_is", {}
    if _DELETE.match(words):
        return "delete_annotation", {}
    if _REJECT.match(words):
        return "reject_annotation", {}
    if match := _DELETE_ALL.match(words):
        kinds = {kind for word, kind in KIND_WORDS.items() if word in match["what"]}
        return ("delete_all_of_kind", {"kind": kinds.pop()}) if len(kinds) == 1 else None
    if match := _RELABEL.match(words):
        return "relabel", {"label": match["label"].strip()}
    return None


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
    guard: PendingGuard | None = None,
) -> LoopResult:
    """One review turn: the newest user message in ``messages`` (system prompt added when missing).

    Each call is one turn of the person's. A bulk delete answers with a dry run that ``guard``
    (the conversation's, as in the command agent) applies only when the person's next message is
    a plain yes; any other message cancels it.
    """
    state = state if state is not None else ReviewState()
    guard = guard if guard is not None else PendingGuard()
    state.turn += 1
    history = list(messages)
    if not history or history[0].get("role") != "system":
        history.insert(0, {"role": "system", "content": SYSTEM})
    registry = guard.wrap(review_tools(state))
    asked = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
    resolved = guard.resolve(ctx, registry, asked)
    guard.new_turn()
    if resolved is not None:
        change, text = resolved
        call = (change.tool, change.args)
        return _answer(*_record(history, call, text, text.startswith("error:"), on_event), on_event)
    shown = show_first(registry, ctx, on_event) if state.current is None else []
    history += shown
    command = parse_command(asked, state)
    if command is not None:
        if shown and command[0] == "next_finding":  # "let's review": the finding is on screen already
            return _answer(history, shown[-1]["content"], [], on_event)
        return _direct(history, registry, ctx, command, on_event)
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


def _answer(
    history: list[dict[str, Any]], text: str, calls: list[CallRecord], on_event: EventSink | None
) -> LoopResult:
    history.append({"role": "assistant", "content": text})
    if on_event is not None:
        on_event(Final(text, 0, False))
    return LoopResult(text, 0, False, calls, history)


def _direct(
    history: list[dict[str, Any]],
    registry: Registry,
    ctx: ToolContext,
    command: tuple[str, dict[str, Any]],
    on_event: EventSink | None,
) -> LoopResult:
    """Run a parsed command's tool as if the model had called it; its result is the answer."""
    name, args = command
    try:
        text, error = registry.get(name)(ctx, args).text(), False
    except ToolError as exc:
        text, error = f"error: {exc}", True
    return _answer(*_record(history, command, text, error, on_event), on_event)


def _record(
    history: list[dict[str, Any]],
    command: tuple[str, dict[str, Any]],
    text: str,
    error: bool,
    on_event: EventSink | None,
) -> tuple[list[dict[str, Any]], str, list[CallRecord]]:
    """A call that ran without the model, as events and history; its result is the answer."""
    name, args = command
    emit = on_event or (lambda event: None)
    emit(ToolCall(name, args))
    emit(ToolResult(name, text, error))
    history += [
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": name, "arguments": args}}]},
        {"role": "tool", "tool_name": name, "content": text},
    ]
    return history, text, [CallRecord(name, args, text, error)]


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
    guard: PendingGuard = field(default_factory=PendingGuard)
    history: list[dict[str, Any]] = field(default_factory=lambda: [{"role": "system", "content": SYSTEM}])
    # A review reply is a sentence: the cap stops a small model that starts repeating itself (seen:
    # Qwen2.5-Coder-1.5B ran a turn past a 4096-token context).
    options: Mapping[str, Any] = field(default_factory=lambda: {"temperature": 0, "num_predict": 256})

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
            guard=self.guard,
        )
        self.history = trim(result.messages)
        return result
