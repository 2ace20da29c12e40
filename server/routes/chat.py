"""The agent over the API: chat (the agent's steps streamed as server-sent events) and the caller's
conversations; thin adapters over :mod:`ops.conversations` and the server's agent pool
(:mod:`server.agents`).

A conversation is its owner's: anyone else gets 404 for it, so a pending change can only be
confirmed (a plain "yes") or declined (anything else) by the person who asked for it.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from agent.events import AssistantText, Event, Final, ToolCall, ToolResult
from ops import conversations
from ops.caller import Caller
from ops.errors import OpError
from server.agents import AgentPool
from server.deps import CallerDep, EnvDep
from server.routes.schema import Id, errors
from store.models import AgentRun, Message

router = APIRouter(prefix="/projects/{project_id}", tags=["agent"], responses=errors())
log = logging.getLogger("labelwright.server")
MAX_MESSAGE = 4000  # characters: a command, not a document


class ChatRequest(BaseModel):
    message: str = Field(min_length=1, max_length=MAX_MESSAGE, description="What you ask the agent.")
    conversation_id: Id | None = Field(
        None, description="Continue this conversation of yours; omit to start a new one."
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {"message": "label the people"},
                {"message": "yes", "conversation_id": 12},
            ]
        }
    }


SSE_EXAMPLE = (
    'event: conversation\ndata: {"conversation_id": 12}\n\n'
    'event: tool_call\ndata: {"name": "count", "args": {"label": "person"}}\n\n'
    'event: tool_result\ndata: {"name": "count", "text": "4 person annotations", "error": false}\n\n'
    'event: final\ndata: {"text": "4 person annotations", "conversation_id": 12, "pending": null}\n\n'
)
CHAT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": (
            "Server-sent events, one per step: `conversation` (its id, first), `text` (the model's "
            "words), `tool_call`, `tool_result`, then `final` (the answer; `pending` is the summary "
            "of a change waiting for your yes, or null) or `error` (the agent could not answer)."
        ),
        "content": {
            "text/event-stream": {
                "schema": {  # one server-sent event: its name and a JSON object as its data
                    "type": "object",
                    "properties": {
                        "event": {
                            "type": "string",
                            "enum": ["conversation", "text", "tool_call", "tool_result", "final", "error"],
                        },
                        "data": {"type": "string", "contentMediaType": "application/json"},
                    },
                    "required": ["data"],
                },
                "example": SSE_EXAMPLE,
            }
        },
    }
}


def sse(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, default=str)}\n\n"


def event_frame(event: Event) -> str | None:
    """An agent event as one SSE frame (the loop's own Final is replaced by the turn's answer)."""
    if isinstance(event, ToolCall):
        return sse("tool_call", {"name": event.name, "args": event.args})
    if isinstance(event, ToolResult):
        return sse("tool_result", {"name": event.name, "text": event.text, "error": event.error})
    if isinstance(event, AssistantText):
        return sse("text", {"text": event.text})
    assert isinstance(event, Final)
    return None


def stream_turn(pool: AgentPool, caller: Caller, project_id: int, run_id: int, message: str) -> Iterator[str]:
    """The agent's events for one message as they happen; the agent runs in a thread of its own
    (a client that goes away does not stop a change half-way)."""
    frames: queue.Queue[str | None] = queue.Queue()

    def work() -> None:
        try:
            _, turn = pool.send(caller, project_id, message, lambda e: _put(frames, e), run_id=run_id)
            frames.put(sse("final", {"text": turn.text, "conversation_id": run_id, "pending": turn.pending}))
        except (OpError, ValueError, RuntimeError) as exc:  # RuntimeError: LLMUnavailable
            frames.put(sse("error", {"detail": str(exc), "conversation_id": run_id}))
        except Exception as exc:  # our bug: logged, and the client is told instead of left hanging
            log.exception("chat turn failed in conversation %s", run_id)
            detail = f"internal error ({type(exc).__name__}); see the server log"
            frames.put(sse("error", {"detail": detail, "conversation_id": run_id}))
        finally:
            frames.put(None)

    yield sse("conversation", {"conversation_id": run_id})
    threading.Thread(target=work, name=f"chat-{run_id}", daemon=True).start()
    while (frame := frames.get()) is not None:
        yield frame


def _put(frames: queue.Queue[str | None], event: Event) -> None:
    frame = event_frame(event)
    if frame is not None:
        frames.put(frame)


@router.post("/chat", responses=CHAT_RESPONSES, response_class=StreamingResponse)
def chat(
    project_id: Id, body: ChatRequest, request: Request, env: EnvDep, caller: CallerDep
) -> StreamingResponse:
    """Send the agent one message; its steps stream back as server-sent events.

    Large changes come back as a dry run (`pending` in the `final` event): reply `yes` in the same
    conversation to apply it, anything else cancels it. Only you can confirm your own.
    """
    pool: AgentPool = request.app.state.agents
    if body.conversation_id is None:
        run = conversations.start(env, caller, project_id, kind="command", model=pool.model)
    else:
        run = conversations.get(env, caller, project_id, body.conversation_id, kind="command")
    assert run.id is not None and caller is not None  # the operation refused anonymous callers
    return StreamingResponse(
        stream_turn(pool, caller, project_id, run.id, body.message),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def run_public(run: AgentRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "project_id": run.project_id,
        "kind": run.kind,
        "model": run.model,
        "owner": run.owner,
        "title": run.title,
        "created_at": run.created_at,
    }


def message_public(m: Message) -> dict[str, Any]:
    return {
        "role": m.role,
        "content": m.content,
        "tool_name": m.tool_name or None,
        "tool_calls": m.tool_calls or None,
        "created_at": m.created_at,
    }


@router.get("/conversations")
def list_conversations(
    project_id: Id, env: EnvDep, caller: CallerDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[dict[str, Any]]:
    """Your conversations with the agent in this project, newest first."""
    return [run_public(r) for r in conversations.list_(env, caller, project_id, limit=limit)]


@router.get("/conversations/{run_id}")
def get_conversation(project_id: Id, run_id: Id, env: EnvDep, caller: CallerDep) -> dict[str, Any]:
    """One of your conversations with its messages (user, assistant, tool calls and results)."""
    rows = conversations.messages(env, caller, project_id, run_id)
    return {"id": run_id, "messages": [message_public(m) for m in rows]}


@router.delete("/conversations/{run_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_conversation(project_id: Id, run_id: Id, request: Request, env: EnvDep, caller: CallerDep) -> None:
    """Delete one of your conversations (and any change it had waiting for your yes)."""
    conversations.delete(env, caller, project_id, run_id)
    assert caller is not None
    request.app.state.agents.forget(caller, project_id, run_id)
