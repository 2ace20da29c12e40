"""Agent conversations: runs (one chat or one review pass) and their ordered messages."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from store.models import AgentRun, Message

ROLES = ("system", "user", "assistant", "tool")
RUN_KINDS = ("command", "review")


def create_run(
    session: Session,
    *,
    project_id: int,
    kind: str = "command",
    model: str = "",
    title: str = "",
    owner: str = "",
) -> AgentRun:
    """Start a conversation; ``owner`` is the user it belongs to (commits)."""
    if kind not in RUN_KINDS:
        raise ValueError(f"run kind must be one of {list(RUN_KINDS)}, got {kind!r}")
    run = AgentRun(project_id=project_id, kind=kind, model=model, title=title, owner=owner)
    session.add(run)
    session.commit()
    return run


def get_run(session: Session, *, run_id: int) -> AgentRun | None:
    return session.get(AgentRun, run_id)


def add_message(
    session: Session,
    *,
    run_id: int,
    role: str,
    content: str = "",
    tool_name: str = "",
    tool_calls: list[dict[str, Any]] | None = None,
) -> Message:
    """Append a message; ``tool`` messages name their tool, as the Ollama protocol does."""
    if role not in ROLES:
        raise ValueError(f"message role must be one of {list(ROLES)}, got {role!r}")
    if role == "tool" and not tool_name:
        raise ValueError("a tool message needs the tool_name it answers, got ''")
    if session.get(AgentRun, run_id) is None:
        raise ValueError(f"no agent run with id {run_id}")
    message = Message(run_id=run_id, role=role, content=content, tool_name=tool_name, tool_calls=tool_calls)
    session.add(message)
    session.commit()
    return message


def get_messages(session: Session, *, run_id: int) -> list[Message]:
    """The run's messages in the order they were added."""
    return list(session.exec(select(Message).where(Message.run_id == run_id).order_by(col(Message.id))))


def list_runs(
    session: Session, *, project_id: int, kind: str | None = None, limit: int = 50
) -> list[AgentRun]:
    """The project's runs, newest first."""
    statement = select(AgentRun).where(AgentRun.project_id == project_id)
    if kind is not None:
        statement = statement.where(AgentRun.kind == kind)
    return list(session.exec(statement.order_by(col(AgentRun.id).desc()).limit(limit)))
