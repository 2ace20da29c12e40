"""Conversations with the agent belong to the person who started them.

Only the owner may list, read, continue or delete a conversation; to anyone else it does not
exist (NotFound, so ids of other people's conversations are not confirmed).
"""

from __future__ import annotations

from sqlmodel import col, select

from ops.caller import Caller
from ops.errors import Invalid, NotFound
from ops.unit import Env, Unit, change, read
from store.conversations import RUN_KINDS, create_run, get_messages
from store.models import AgentRun, Message


def _own(unit: Unit, run_id: int, kind: str | None = None) -> AgentRun:
    run = unit.session.get(AgentRun, run_id)
    if (
        run is None
        or run.project_id != unit.project_id
        or run.owner != unit.caller.username
        or (kind is not None and run.kind != kind)
    ):
        raise NotFound(f"no {kind or 'agent'} conversation {run_id} of yours in project {unit.project_id}")
    return run


def start(
    env: Env, caller: Caller | None, project_id: int, *, kind: str = "command", model: str = ""
) -> AgentRun:
    if kind not in RUN_KINDS:
        raise Invalid(f"conversation kind must be one of {list(RUN_KINDS)}, got {kind!r}")
    with read(env, caller, "agent.chat", project_id) as unit:
        run = create_run(
            unit.session, project_id=project_id, kind=kind, model=model, owner=unit.caller.username
        )
        return run


def get(
    env: Env, caller: Caller | None, project_id: int, run_id: int, *, kind: str | None = None
) -> AgentRun:
    with read(env, caller, "agent.chat", project_id) as unit:
        return _own(unit, run_id, kind)


def list_(env: Env, caller: Caller | None, project_id: int, *, limit: int = 50) -> list[AgentRun]:
    with read(env, caller, "agent.chat", project_id) as unit:
        return list(
            unit.session.exec(
                select(AgentRun)
                .where(AgentRun.project_id == project_id, AgentRun.owner == unit.caller.username)
                .order_by(col(AgentRun.id).desc())
                .limit(limit)
            )
        )


def messages(env: Env, caller: Caller | None, project_id: int, run_id: int) -> list[Message]:
    with read(env, caller, "agent.chat", project_id) as unit:
        _own(unit, run_id)
        return get_messages(unit.session, run_id=run_id)


def delete(env: Env, caller: Caller | None, project_id: int, run_id: int) -> None:
    from sqlalchemy import delete as sql_delete

    with change(env, caller, "agent.chat", project_id) as unit:
        _own(unit, run_id)
        unit.session.exec(sql_delete(Message).where(col(Message.run_id) == run_id))
        unit.session.exec(sql_delete(AgentRun).where(col(AgentRun.id) == run_id))
