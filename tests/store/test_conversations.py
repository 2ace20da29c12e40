from __future__ import annotations

import pytest
from sqlmodel import Session

from store.conversations import add_message, create_run, get_messages, get_run, list_runs
from store.models import Project


def test_messages_come_back_in_order_with_tool_calls(session: Session, project: Project) -> None:
    run = create_run(session, project_id=project.id, model="qwen2.5-coder:1.5b", title="label cars")
    calls = [{"function": {"name": "auto_label", "arguments": {"labels": ["car"]}}}]
    add_message(session, run_id=run.id, role="system", content="You label images.")
    add_message(session, run_id=run.id, role="user", content="label every car")
    add_message(session, run_id=run.id, role="assistant", tool_calls=calls)
    add_message(session, run_id=run.id, role="tool", tool_name="auto_label", content="job 3 queued")
    messages = get_messages(session, run_id=run.id)
    assert [m.role for m in messages] == ["system", "user", "assistant", "tool"]
    assert messages[2].tool_calls == calls and messages[3].tool_name == "auto_label"
    assert get_run(session, run_id=run.id).title == "label cars"
    assert get_messages(session, run_id=999) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"role": "robot"}, "role must be one of \\['system', 'user', 'assistant', 'tool'\\], got 'robot'"),
        ({"role": "tool"}, "needs the tool_name"),
        ({"role": "user", "run_id": 999}, "no agent run with id 999"),
    ],
)
def test_bad_messages_are_refused(session: Session, project: Project, kwargs: dict, message: str) -> None:
    run = create_run(session, project_id=project.id)
    with pytest.raises(ValueError, match=message):
        add_message(session, **({"run_id": run.id} | kwargs))
    assert get_messages(session, run_id=run.id) == []


def test_list_runs_newest_first_by_kind(session: Session, project: Project) -> None:
    first = create_run(session, project_id=project.id)
    review = create_run(session, project_id=project.id, kind="review")
    last = create_run(session, project_id=project.id)
    assert [r.id for r in list_runs(session, project_id=project.id)] == [last.id, review.id, first.id]
    assert [r.id for r in list_runs(session, project_id=project.id, kind="review")] == [review.id]
    assert [r.id for r in list_runs(session, project_id=project.id, limit=1)] == [last.id]
    with pytest.raises(ValueError, match="run kind must be one of"):
        create_run(session, project_id=project.id, kind="chat")
