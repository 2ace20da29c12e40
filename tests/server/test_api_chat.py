"""The agent over the API, as a script would use it: plain ``httpx`` against the real app served by
uvicorn on a loopback port (its lifespan runs the job runner), the LLM scripted, the vision stack
fake. One person labels, counts and confirms a dry run; another cannot confirm it."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx
from fastapi import FastAPI

from agent.llm import DEFAULT_MODEL
from server import agents
from tests.agent.conftest import ScriptedModel, call
from tests.server import agent_fakes
from tests.server.agent_fakes import use_model
from tests.server.conftest import World, make_app

served = agent_fakes.served  # the real app on a loopback port (a fixture)


def chat(
    http: httpx.Client, project_id: int, message: str, conversation_id: int | None = None, timeout: float = 30
) -> list[tuple[str, Any]]:
    """POST a message and read the event stream: [(event, data), ...]."""
    body: dict[str, Any] = {"message": message}
    if conversation_id is not None:
        body["conversation_id"] = conversation_id
    events: list[tuple[str, Any]] = []
    with http.stream("POST", f"/api/v1/projects/{project_id}/chat", json=body, timeout=timeout) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((kind or "", json.loads(line.removeprefix("data: "))))
    return events


def people(http: httpx.Client, world: World) -> int:
    params = {"category_id": world.categories["person"]}
    return len(http.get(f"/api/v1/projects/{world.project_id}/annotations", params=params).json())


def final(events: list[tuple[str, Any]]) -> dict[str, Any]:
    kinds = [k for k, _ in events]
    assert kinds[0] == "conversation" and kinds[-1] == "final", events
    return events[-1][1]


def test_a_script_labels_counts_and_confirms_a_dry_run(world: World, served: tuple[str, FastAPI]) -> None:
    url, app = served
    model = ScriptedModel(
        {"content": "", "tool_calls": [call("auto_label", classes=["person"])]},
        {"content": "", "tool_calls": [call("count", label="person")]},
        {"content": "", "tool_calls": [call("delete_annotations", label="person")]},
        {"content": "There is nothing waiting for your yes."},  # the reviewer's own conversation
        {"content": "There is nothing waiting for your yes."},  # (asked twice: the agent insists once)
    )
    use_model(app, model)
    pid = world.project_id
    alice = httpx.Client(base_url=url, headers=world.auth("annotator"))
    bob = httpx.Client(base_url=url, headers=world.auth("reviewer"))

    labelled = chat(alice, pid, "label person in all images")
    run_id = labelled[0][1]["conversation_id"]
    assert ("tool_call", {"name": "auto_label", "args": {"classes": ["person"]}}) in labelled
    started = next(d["text"] for k, d in labelled if k == "tool_result")
    job_id = int(re.search(r"job (\d+)", started).group(1))  # type: ignore[union-attr]
    deadline = time.monotonic() + 20
    while alice.get(f"/api/v1/projects/{pid}/jobs/{job_id}").json()["state"] != "done":
        assert time.monotonic() < deadline, "the label job did not finish"
        time.sleep(0.05)

    counted = final(chat(alice, pid, "how many person annotations are there?", run_id))
    n_people = people(alice, world)
    assert n_people == 4  # two fake people over the threshold on each of the two photos
    assert str(n_people) in counted["text"] and counted["conversation_id"] == run_id

    dry = final(chat(alice, pid, "delete the person annotations", run_id))
    assert dry["pending"] is not None and "delete 4 annotations" in dry["pending"]
    assert people(alice, world) == 4

    # Another user's "yes": refused for alice's conversation, and harmless in bob's own.
    refused = bob.post(f"/api/v1/projects/{pid}/chat", json={"message": "yes", "conversation_id": run_id})
    assert refused.status_code == 404
    bobs = final(chat(bob, pid, "yes"))
    assert bobs["conversation_id"] != run_id and bobs["pending"] is None
    assert people(alice, world) == 4

    applied = chat(alice, pid, "yes", run_id)
    assert final(applied)["text"].startswith("Applied: done: delete 4 annotations")
    assert ("tool_call", "delete_annotations") in [(k, d.get("name")) for k, d in applied]
    assert people(alice, world) == 0
    assert model.replies == []  # the "yes" was applied in code: the model was not asked

    mine = alice.get(f"/api/v1/projects/{pid}/conversations").json()
    assert [c["id"] for c in mine] == [run_id] and mine[0]["owner"] == "annotator"
    messages = alice.get(f"/api/v1/projects/{pid}/conversations/{run_id}").json()["messages"]
    assert [m["content"] for m in messages if m["role"] == "user"] == [
        "label person in all images",
        "how many person annotations are there?",
        "delete the person annotations",
        "yes",
    ]
    assert bob.get(f"/api/v1/projects/{pid}/conversations/{run_id}").status_code == 404
    assert bob.delete(f"/api/v1/projects/{pid}/conversations/{run_id}").status_code == 404
    assert alice.delete(f"/api/v1/projects/{pid}/conversations/{run_id}").status_code == 204
    assert alice.get(f"/api/v1/projects/{pid}/conversations/{run_id}").status_code == 404


def test_a_declined_dry_run_changes_nothing(world: World, served: tuple[str, FastAPI]) -> None:
    url, app = served
    pid = world.project_id
    model = ScriptedModel(
        {"content": "", "tool_calls": [call("delete_annotations", everything=True)]},
        {"content": "", "tool_calls": [call("count")]},
    )
    use_model(app, model)
    alice = httpx.Client(base_url=url, headers=world.auth("annotator"))
    for image in ("bus.jpg", "zidane.jpg"):  # four annotations: over the dry-run threshold
        for x in (10, 200):
            created = alice.post(
                f"/api/v1/projects/{pid}/annotations",
                json={"image_id": world.images[image], "category_id": world.categories["person"],
                      "bbox": [x, 20, 100, 200]},
            )  # fmt: skip
            assert created.status_code == 201, created.text
    dry = final(chat(alice, pid, "delete everything"))
    assert dry["pending"] is not None
    declined = final(chat(alice, pid, "no, count them", dry["conversation_id"]))
    assert declined["pending"] is None
    assert people(alice, world) == 4  # (the template's queued bus job may add buses meanwhile)


def test_a_viewer_may_chat_but_the_agent_acts_with_their_role(
    world: World, served: tuple[str, FastAPI]
) -> None:
    url, app = served
    use_model(app, ScriptedModel({"content": "", "tool_calls": [call("auto_label", classes=["person"])]},
                                 {"content": "I may not label in this project."}))  # fmt: skip
    viewer = httpx.Client(base_url=url, headers=world.auth("viewer"))
    events = chat(viewer, world.project_id, "label person")
    result = next(d for k, d in events if k == "tool_result")
    assert result["error"] and "annotator" in result["text"]
    anonymous = httpx.post(f"{url}/api/v1/projects/{world.project_id}/chat", json={"message": "hi"})
    assert anonymous.status_code == 401


def test_no_llm_is_an_error_event_not_a_crash(world: World, served: tuple[str, FastAPI]) -> None:
    from agent.llm import LLMUnavailable

    url, app = served
    use_model(app, ScriptedModel(LLMUnavailable("no Ollama server and no local weights")))
    events = chat(httpx.Client(base_url=url, headers=world.auth("viewer")), world.project_id, "hello")
    assert events[-1][0] == "error" and "no local weights" in events[-1][1]["detail"]
    use_model(app, ScriptedModel(KeyError("a bug of ours")))
    events = chat(httpx.Client(base_url=url, headers=world.auth("viewer")), world.project_id, "hello")
    assert events[-1] == ("error", {"detail": "internal error (KeyError); see the server log",
                                    "conversation_id": events[0][1]["conversation_id"]})  # fmt: skip


def test_the_chat_route_is_documented_with_examples(world: World) -> None:
    spec = make_app(world).openapi()
    post = spec["paths"]["/api/v1/projects/{project_id}/chat"]["post"]
    assert "text/event-stream" in post["responses"]["200"]["content"]
    schema = spec["components"]["schemas"]["ChatRequest"]
    assert schema["examples"][0] == {"message": "label the people"}
    assert agents.DEFAULT_MODEL == DEFAULT_MODEL


def test_a_spanish_si_confirms_on_the_server(world: World, served: tuple[str, FastAPI]) -> None:
    """The server's agents understand every shipped language: "borra ..." is a delete, "sí" a yes."""
    url, app = served
    pid = world.project_id
    use_model(app, ScriptedModel({"content": "", "tool_calls": [call("delete_annotations", label="person")]}))
    alice = httpx.Client(base_url=url, headers=world.auth("annotator"))
    for image in ("bus.jpg", "zidane.jpg"):
        for x in (10, 200):
            body = {"image_id": world.images[image], "category_id": world.categories["person"],
                    "bbox": [x, 20, 100, 200]}  # fmt: skip
            assert alice.post(f"/api/v1/projects/{pid}/annotations", json=body).status_code == 201
    dry = final(chat(alice, pid, "borra todas las anotaciones de person"))
    assert dry["pending"] is not None and people(alice, world) == 4
    applied = final(chat(alice, pid, "¡sí, por favor!", dry["conversation_id"]))
    assert applied["text"].startswith("Applied: done: delete 4 annotations") and people(alice, world) == 0


def test_a_language_no_lexicon_knows_gets_a_dry_run_over_the_api(
    world: World, served: tuple[str, FastAPI]
) -> None:
    """German: "lösche ..." has no delete word any lexicon knows, so the delete is not refused but
    previewed, even for one annotation (below the dry-run threshold), and waits for the yes."""
    url, app = served
    pid = world.project_id
    use_model(app, ScriptedModel({"content": "", "tool_calls": [call("delete_annotations", label="person")]}))
    alice = httpx.Client(base_url=url, headers=world.auth("annotator"))
    body = {
        "image_id": world.images["bus.jpg"],
        "category_id": world.categories["person"],
        "bbox": [10, 20, 100, 200],
    }
    assert alice.post(f"/api/v1/projects/{pid}/annotations", json=body).status_code == 201
    dry = final(chat(alice, pid, "lösche die Personen"))
    assert dry["pending"] == "delete 1 annotation of class 'person' in 1 image" and people(alice, world) == 1
    applied = final(chat(alice, pid, "ok", dry["conversation_id"]))
    assert applied["text"].startswith("Applied: done: delete 1 annotation") and people(alice, world) == 0
