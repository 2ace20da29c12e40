"""The command agent: plain-English commands on a project, one persisted conversation per run.

Each :meth:`CommandAgent.send` is one user turn: a pending large change is applied (the message is
a plain "yes") or cancelled (anything else) first, in code, without the model; otherwise the
tool-calling loop runs with the fixed system prompt, the conversation so far and a fresh line of
project facts. Every message is stored (``AgentRun`` + ``Message``), so a run can be resumed by id.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import select

from agent.events import AssistantText, Event, EventSink, Final, ToolCall, ToolResult
from agent.grounding import ground
from agent.lexicon import DEFAULT, Lexicon
from agent.loop import CallRecord, ChatClient, run_loop
from agent.pending import PendingGuard
from agent.prompts import COMMAND_TOOLS, has_videos, project_facts, system_for, terse, tool_names
from agent.request import Request
from ops import conversations, jobs
from store.categories import list_categories
from store.conversations import add_message, get_messages
from store.db import new_session
from store.models import Image
from tools.pipeline import find_image
from tools.registry import Registry, Tool, ToolContext
from tools.registry import ToolResult as ToolOutput

INSIST = "Call the one tool that does what the user just asked."  # when the first reply calls none
HISTORY = 12  # messages of earlier turns sent along: enough for follow-ups, cheap to re-read
DEFAULT_OPTIONS = {"temperature": 0, "seed": 0}


@dataclass
class Turn:
    """What one user message led to."""

    text: str
    tool_calls: list[CallRecord] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    first_tool_s: float | None = None  # seconds from the message to the first tool call
    pending: str | None = None  # summary of a change now waiting for the user's yes


class LabelReport(ToolOutput):
    """``auto_label`` once its job has run in-process: the job's outcome, not just its id."""

    started: str
    report: str

    def text(self) -> str:
        return f"{self.started}; {self.report}"


LABELING = ("auto_label", "label_with_project_detector")  # tools that start a labeling job


def reporting(tool: Tool) -> Tool:
    """``auto_label`` that reports its job's outcome when the job already ran (the CLI runs it
    in-process from ``on_job``); with a background runner the job is still queued and the plain
    "started job N" is the truth."""

    def fn(ctx: ToolContext, args: BaseModel) -> ToolOutput:
        if getattr(args, "images", None) == []:  # models write [] for "all images"
            args = args.model_copy(update={"images": None})
        result = tool.fn(ctx, args)
        job_id = getattr(result, "job_id", None)
        if job_id is None:
            return result
        job = jobs.get(ctx.env, ctx.caller, ctx.project_id, job_id)
        if job.state not in ("done", "failed", "cancelled"):
            return result
        return LabelReport(
            started=result.text(), report=jobs.report(ctx.env, ctx.caller, ctx.project_id, job_id)
        )

    return dataclasses.replace(tool, fn=fn)


def agent_registry(tools: Registry, names: list[str] | None = None) -> Registry:
    """The command agent's tools: terse schemas, and ``auto_label`` reporting its outcome."""
    chosen = terse(tools, names or [n for n in COMMAND_TOOLS if n in tools.names()])
    return Registry([reporting(t) if t.name in LABELING else t for t in map(chosen.get, chosen.names())])


class ResultAnswers:
    """A client wrapper that answers from the tool results instead of asking the model again.

    After tools ran without error, the next request gets their result text (compact and human
    readable by design) as the final answer, with no second model call: on 2 CPU cores that halves
    a turn, and a 1.5B model's paraphrase often dropped or garbled the numbers. After an error the
    model is asked again, so it can fix its arguments. So it is when the user asked for more steps
    than have run ("label the dogs, then show me the ones under 0.4": the lexicon's ``then``).
    """

    def __init__(self, client: ChatClient, lexicon: Lexicon = DEFAULT) -> None:
        self.client = client
        self.lexicon = lexicon

    def chat(self, model: str = "", messages: Any = None, **kwargs: Any) -> Any:
        messages = list(messages or [])
        results = _trailing_results(messages)
        if results and not any(r.startswith("error:") for r in results) and self._all_steps_ran(messages):
            return {
                "model": model,
                "done": True,
                "message": {"role": "assistant", "content": _answer(_turn_results(messages))},
            }
        return self.client.chat(model, messages, **kwargs)

    def _all_steps_ran(self, messages: list[Any]) -> bool:
        """At least one successful tool result per step the user's last message asks for."""
        last = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
        if last < 0:
            return True
        steps = 1 + len(self.lexicon.then.findall(str(messages[last].get("content", ""))))
        done = [m for m in messages[last + 1 :] if m.get("role") == "tool"]
        return sum(not str(m.get("content", "")).startswith("error:") for m in done) >= steps


def _turn_results(messages: list[Any]) -> list[str]:
    """The successful tool results since the user's last message (every step of the request)."""
    last = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    return [
        str(m.get("content", ""))
        for m in messages[last + 1 :]
        if m.get("role") == "tool" and not str(m.get("content", "")).startswith("error:")
    ]


def _trailing_results(messages: list[Any]) -> list[str]:
    out: list[str] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        out.append(str(message.get("content", "")))
    return out[::-1]


def _answer(results: list[str]) -> str:
    text = " ".join(r[0].upper() + r[1:] if r else r for r in results)
    return text.replace("Tell the user and ask them to reply yes to apply it.", "Reply yes to apply it.")


class CommandAgent:
    """One conversation about one project. Create with :meth:`start` or :meth:`resume`."""

    def __init__(
        self,
        client: ChatClient,
        model: str,
        ctx: ToolContext,
        tools: Registry,
        *,
        run_id: int,
        constrained: bool = False,
        options: Mapping[str, Any] | None = None,
        max_steps: int = 5,
        model_answers: bool = False,
        insist: str | None = INSIST,
        lexicon: Lexicon = DEFAULT,
    ) -> None:
        self.lexicon = lexicon  # the words the grounding and confirmation rules listen for
        self.client = client if model_answers else ResultAnswers(client, lexicon)
        self.model = model
        self.ctx = dataclasses.replace(ctx, caller=ctx.caller.through("agent", run_id))
        self.guard = PendingGuard(lexicon)
        videos = has_videos(ctx.engine, ctx.project_id)
        self.system = system_for(videos)
        names = [n for n in tool_names(videos) if n in tools.names()]
        self.registry = self.guard.wrap(agent_registry(tools, names))
        self.run_id = run_id
        self.constrained = constrained
        self.options = dict(DEFAULT_OPTIONS if options is None else options)
        self.max_steps = max_steps
        self.insist = insist
        self.request = Request("")  # the user's words this turn; set by send()
        self.dropped: dict[str, Any] = {}  # filters left out this turn because the user never named them

    @classmethod
    def start(
        cls, client: ChatClient, model: str, ctx: ToolContext, tools: Registry, **kw: Any
    ) -> CommandAgent:
        run = conversations.start(ctx.env, ctx.caller, ctx.project_id, kind="command", model=model)
        assert run.id is not None
        return cls(client, model, ctx, tools, run_id=run.id, **kw)

    @classmethod
    def resume(
        cls, client: ChatClient, model: str, ctx: ToolContext, tools: Registry, run_id: int, **kw: Any
    ) -> CommandAgent:
        """Continue run ``run_id`` (only its owner may); a dry run it ended on is pending again if
        still accurate."""
        conversations.get(ctx.env, ctx.caller, ctx.project_id, run_id, kind="command")
        agent = cls(client, model, ctx, tools, run_id=run_id, **kw)
        history = agent.history()
        if len(history) >= 2 and history[-1]["role"] in ("tool", "assistant"):
            last_call = next((m for m in reversed(history) if m.get("tool_calls")), None)
            last_tool = next((m for m in reversed(history) if m["role"] == "tool"), None)
            if last_call and last_tool and history.index(last_call) > _last_user(history):
                call = last_call["tool_calls"][-1]["function"]
                agent.guard.restore(
                    agent.ctx, agent.registry, call["name"], call["arguments"], last_tool["content"]
                )
        return agent

    def history(self) -> list[dict[str, Any]]:
        """The stored conversation as Ollama messages."""
        with new_session(self.ctx.engine) as session:
            rows = get_messages(session, run_id=self.run_id)
        out: list[dict[str, Any]] = []
        for m in rows:
            message: dict[str, Any] = {"role": m.role, "content": m.content}
            if m.tool_calls:
                message["tool_calls"] = m.tool_calls
            if m.tool_name:
                message["tool_name"] = m.tool_name
            out.append(message)
        return out

    def warm_up(self) -> None:
        """Evaluate the fixed system+tools prefix once so the first command reuses it."""
        self.client.chat(
            self.model,
            [{"role": "system", "content": self.system}],
            tools=self.registry.schemas(),
            options={**self.options, "num_predict": 1},
        )

    def send(self, text: str, on_event: EventSink | None = None) -> Turn:
        """Handle one user message; returns the answer and what was called."""
        started = time.perf_counter()
        first: list[float] = []
        sink = on_event or (lambda event: None)

        def emit(event: Event) -> None:
            if isinstance(event, ToolCall) and not first:
                first.append(time.perf_counter() - started)
            sink(event)

        text = text.strip()
        if not text:
            raise ValueError("a command must not be empty")
        earlier = self.history()
        waiting = self.guard.pending
        resolved = self.guard.resolve(self.ctx, self.registry, text)
        if waiting is not None and resolved is None:
            cancelled = f"Cancelled the pending change (it would {waiting.summary})."
            note = {"role": "assistant", "content": cancelled}
            emit(AssistantText(note["content"]))
            self._save([note])
            earlier.append(note)
        self._save([{"role": "user", "content": text}])
        if resolved is not None:
            change, result = resolved
            shown = {k: v for k, v in change.args.items() if v not in (None, False, [], "")}
            args = {**shown, "confirm": change.token}
            emit(ToolCall(change.tool, args))
            emit(ToolResult(change.tool, result, result.startswith("error:")))
            answer = f"Applied: {result}" if not result.startswith("error:") else f"Not applied: {result}"
            emit(Final(answer, 0))
            self._save(
                [
                    {"role": "assistant", "content": "", "tool_calls": [_call(change.tool, change.args)]},
                    {"role": "tool", "tool_name": change.tool, "content": result},
                    {"role": "assistant", "content": answer},
                ]
            )
            record = CallRecord(change.tool, args, result, result.startswith("error:"))
            return Turn(answer, [record], 0, time.perf_counter() - started, first[0] if first else None)
        self.request = self._request(text, earlier)
        self.guard.new_turn(preview_only=self.request.unheard)
        self.dropped = {}
        messages = [
            {"role": "system", "content": self.system},
            *_for_model(_window(earlier)),
            {"role": "system", "content": project_facts(self.ctx.engine, self.ctx.project_id)},
            {"role": "user", "content": text},
        ]
        result = run_loop(
            self.client,
            self.model,
            messages,
            self.registry,
            self.ctx,
            max_steps=self.max_steps,
            constrained=self.constrained,
            options=self.options,
            on_event=emit,
            prepare=self.prepare,
            insist=self.insist,
        )
        answer = result.text
        if not re.search(r"[A-Za-z0-9]", answer) and result.tool_calls:  # "{}" or nothing: a 1.5B quirk
            answer = f"Result: {result.tool_calls[-1].result}"
        pending = self.guard.pending
        if pending is not None and pending.summary not in answer:  # a small model may claim it is done
            answer = (
                f"{answer}\n(Waiting for your yes: this will {pending.summary}. Anything else cancels it.)"
            )
            if self.request.unheard:  # no lexicon knows their language: say which word confirms
                answer += ' Reply "ok" to apply it.'
        if pending is not None and self.dropped:
            left_out = ", ".join(f"{k}={v!r}" for k, v in self.dropped.items())
            answer += f"\n(I left out filters your request did not name: {left_out}.)"
        new = result.messages[len(messages) :]
        if new and new[-1]["role"] == "assistant" and not new[-1].get("tool_calls"):
            new = new[:-1]  # the loop's final answer, replaced by ours (same text unless pending)
        self._save([*new, {"role": "assistant", "content": answer}])
        return Turn(
            answer,
            result.tool_calls,
            result.steps,
            time.perf_counter() - started,
            first[0] if first else None,
            pending.summary if pending else None,
        )

    def prepare(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        """A call's arguments with invented filters dropped (see ``agent.grounding``)."""
        grounded = ground(self.registry.get(tool).args, args, self.request)
        self.dropped.update(grounded.dropped)
        return grounded.args

    def _request(self, text: str, earlier: list[dict[str, Any]]) -> Request:
        said = [m["content"] for m in _window(earlier) if m["role"] == "user"]
        engine, project_id = self.ctx.engine, self.ctx.project_id
        said_all = "\n".join([*said, text])
        with new_session(engine) as session:
            classes = frozenset(c.name for c in list_categories(session, project_id=project_id))
            # "the text contains the name", spelled with replace() and length(), which every engine has
            said_lower, name_lower = func.lower(said_all), func.lower(Image.file_name)
            typed = func.length(func.replace(said_lower, name_lower, "")) < func.length(said_lower)
            named = session.exec(  # file names the user typed, spaces and all (one scan of names)
                select(Image.file_name).where(Image.project_id == project_id, typed)
            ).all()

        def image_exists(ref: str | int) -> bool:
            with new_session(engine) as session:
                return find_image(session, project_id=project_id, ref=ref) is not None

        return Request(
            said_all, classes, image_exists, current=text, file_names=tuple(named), lexicon=self.lexicon
        )

    def _save(self, messages: list[dict[str, Any]]) -> None:
        with new_session(self.ctx.engine) as session:
            for m in messages:
                add_message(
                    session,
                    run_id=self.run_id,
                    role=m["role"],
                    content=m.get("content") or "",
                    tool_name=m.get("tool_name", ""),
                    tool_calls=m.get("tool_calls"),
                )


def _call(name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"function": {"name": name, "arguments": args}}


def _last_user(history: list[dict[str, Any]]) -> int:
    return max((i for i, m in enumerate(history) if m["role"] == "user"), default=-1)


def _window(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last ``HISTORY`` messages, starting at a user message (a cut never orphans a tool reply)."""
    if len(history) <= HISTORY:
        return history
    tail = history[-HISTORY:]
    starts = [i for i, m in enumerate(tail) if m["role"] == "user"]
    return tail[starts[0] :] if starts else []


def _for_model(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Earlier turns without the answers that repeat a tool result.

    Those answers are the result text itself ("Done: rename class 'tie' ..."), and with them in
    context the 1.5B model answered "undo that" by writing "Done: undo rename ..." instead of
    calling ``undo``. Without them every earlier turn reads user -> call -> result, the pattern
    we want continued; the result is still there for follow-up questions.
    """
    after_tool = [i > 0 and history[i - 1]["role"] == "tool" for i in range(len(history))]
    return [
        m
        for m, follows in zip(history, after_tool, strict=True)
        if not (follows and m["role"] == "assistant" and not m.get("tool_calls"))
    ]
