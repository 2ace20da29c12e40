"""Schema fuzzing: schemathesis generates requests from our own OpenAPI document and sends them to
the real app (real store, ASGI transport), anonymous in local mode and with an instance admin's
token on a network bind. Any 5xx, or an answer the document does not describe (status, content
type, headers, body schema), fails the test; the summary line says operations, requests and
failures per run.

Bounded: a fixed seed (``derandomize``), ``EXAMPLES`` positive and ``EXAMPLES`` negative cases per
operation, and a time budget per run (about a minute each on 2 cores).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import World, make_app

schemathesis = pytest.importorskip("schemathesis")

EXAMPLES = 20
BUDGET_S = 180.0  # all four fuzz runs took 252 s in the last full run; the cap is for a loaded machine
# The checks of "is the answer true": no server error and every part of it as documented.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)


def fuzz(app: Any, headers: dict[str, str], known: dict[str, int]) -> tuple[dict[str, int], list[str]]:
    """Run every operation of ``app``'s OpenAPI through schemathesis; (summary, failures).

    Three passes per operation: positive cases, negative cases, and positive cases whose path
    names rows that exist (``known``: project_id, image_id ...), which reach the operations
    instead of stopping at "no project 4711". Deleting the project itself is left out of that
    pass, so later operations still find it.
    """
    from schemathesis import GenerationMode
    from schemathesis import checks as generic
    from schemathesis.specs.openapi import checks as openapi

    chosen = [getattr(generic, n, None) or getattr(openapi, n) for n in CHECKS]
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    counts: Counter[str] = Counter()
    failures: dict[str, str] = {}
    deadline = time.monotonic() + BUDGET_S
    for result in schema.get_all_operations():
        operation = result.ok()
        counts["operations"] += 1
        in_path = set(re.findall(r"{(\w+)}", operation.path))
        fixed = {k: v for k, v in known.items() if k in in_path}
        passes = [(GenerationMode.POSITIVE, {}), (GenerationMode.NEGATIVE, {})]
        if fixed and not (operation.method.upper() == "DELETE" and operation.path.endswith("{project_id}")):
            passes.append((GenerationMode.POSITIVE, fixed))
        for mode, path in passes:
            if time.monotonic() > deadline:
                counts["skipped (time budget)"] += 1
                continue
            _run(operation, mode, path, headers, chosen, counts, failures)
    counts["failures"] = len(failures)
    for key in failures:
        counts[f"failures: {key.split('] ', 1)[1]}"] += 1
    return dict(counts), sorted(failures.values())


def _run(operation: Any, mode: Any, path: dict[str, int], headers: dict[str, str], chosen: list[Any],
         counts: Counter[str], failures: dict[str, str]) -> None:  # fmt: skip
    """``EXAMPLES`` cases of one operation in one mode; failures are kept by (operation, check)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.core.failures import FailureGroup

    label = f"{mode.value}{'+ids' if path else ''}"

    # A live stream of an existing project runs until ``until_s``: end it at once.
    query = {"until_s": 0} if path and operation.path.endswith("/events") else None

    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path or None, query=query))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def one(case: Any) -> None:
        counts["requests"] += 1
        try:
            response = case.call(headers=headers)
            counts[f"answers {response.status_code // 100}xx"] += 1
            case.validate_response(response, checks=chosen, headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                key = f"{operation.label} [{label}] {failure.title}"
                failures.setdefault(key, f"{key}: {str(failure.message)[:300]}")
        except Exception as exc:  # the app raised through the transport: a server error
            key = f"{operation.label} [{label}] {type(exc).__name__}"
            failures.setdefault(key, f"{key}: {str(exc)[:300]}")

    try:
        one()
    except Unsatisfiable:  # nothing to negate (an operation without parameters or body)
        counts["unsatisfiable"] += 1


def loopback_peer(app: Any) -> Any:
    """``app`` as seen from 127.0.0.1: the ASGI transport's peer is "testclient", and only a
    loopback peer is the local user."""

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = {**scope, "client": ("127.0.0.1", 50000)}
        await app(scope, receive, send)

    return asgi


def _known(world: World) -> dict[str, int]:
    return {
        "project_id": world.project_id,
        "image_id": world.images["bus.jpg"],
        "category_id": world.categories["person"],
        "annotation_id": world.annotation_id,
        "finding_id": world.finding_id,
        "job_id": world.job_id,
    }


def _report(name: str, summary: dict[str, int], failures: list[str], tmp: Path) -> str:
    line = f"fuzz {name}: " + ", ".join(f"{k} {v}" for k, v in summary.items())
    print(line)
    return line + ("\n" + "\n".join(failures) if failures else "")


# No model weights in these apps: the chat route answers "no LLM is connected" at once, so the
# budget goes to the HTTP contract, not to the 1.5B model answering fuzzed messages one by one
# (with it, one pass over the chat route outlasted the whole budget).
@pytest.mark.timeout(420)
def test_fuzz_anonymous_local_mode(world: World, tmp_path: Path) -> None:
    app = make_app(world, local_mode=True, allowed_hosts=["testserver"], models=tmp_path / "no-models")
    summary, failures = fuzz(loopback_peer(app), headers={}, known=_known(world))
    assert summary["requests"] > summary["operations"] * EXAMPLES
    assert not failures, _report("anonymous, local mode", summary, failures, tmp_path)
    _report("anonymous, local mode", summary, failures, tmp_path)


@pytest.mark.timeout(420)
def test_fuzz_admin_token_network_mode(world: World, tmp_path: Path) -> None:
    app = make_app(world, host="0.0.0.0", models=tmp_path / "no-models")
    summary, failures = fuzz(app, headers=world.auth("root"), known=_known(world))
    assert summary["requests"] > summary["operations"] * EXAMPLES
    assert not failures, _report("admin token, network bind", summary, failures, tmp_path)
    _report("admin token, network bind", summary, failures, tmp_path)
