"""`labelwright chat -p P "review the flagged annotations with me"` opens the review session."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from agent.review import is_review_request
from server.cli import app
from server.settings import get_settings
from store.db import new_session, open_engine
from store.findings import upsert_finding
from store.projects import create_project
from tests.agent.conftest import ScriptedModel


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("review the flagged annotations with me", True),
        ("Let's review", True),
        ("please review the audit findings", True),
        ("label every pedestrian", False),
        ("how many cars are in image 12?", False),
        ("delete the reviewed boxes", False),
    ],
)
def test_review_requests_are_recognised(text: str, expected: bool) -> None:
    assert is_review_request(text) is expected


def test_chat_hands_a_review_request_to_the_review_agent(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = open_engine(get_settings().db_path)
    with new_session(engine) as session:
        project = create_project(session, name="streets")
        upsert_finding(
            session,
            project_id=project.id,
            kind="tiny_box",
            fingerprint="f1",
            message="box of 12 px² is tiny for this image",
            severity=0.6,
            confidence=0.8,
            bbox=[1, 2, 3, 4],
        )
        session.commit()
    engine.dispose()
    model = ScriptedModel()  # the opening request is handled without a model call
    closed: list[bool] = []
    handle = SimpleNamespace(client=model, model="scripted", close=lambda: closed.append(True))
    monkeypatch.setattr("agent.llm.connect", lambda *a, **k: handle)

    result = CliRunner().invoke(
        app, ["chat", "--project", "streets", "review the flagged annotations with me"]
    )

    assert result.exit_code == 0, result.output
    assert "tiny" in result.output
    assert model.requests == [] and closed == [True]
