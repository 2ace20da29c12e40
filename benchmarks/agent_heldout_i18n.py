"""Evaluator: the command agent on the English + Spanish held-out set (tests/agent/heldout_i18n.py).

    .venv/bin/python benchmarks/agent_heldout_i18n.py [--lang en,es] [--cases name,name]
        [--budget-s 1200] [--threads 1] [--models DIR]

Runs on the embedded Qwen2.5-Coder-1.5B (temperature 0, seed 0), one fresh copy of the seeded
project per case, judged by the store's final state as the dev set is. The agent understands both
languages (``agent.lexicon.languages("en,es")``, as a server configured for both does). Cases run
alternating languages, so a run cut short by ``--budget-s`` still covers both; cases not reached
are listed as not run, never counted. Prints a table and the pass rate per language; writes
benchmarks/results/agent_heldout_i18n.json (with the load average before and after).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[0] = str(REPO)  # not benchmarks/: its click.py would shadow the click package

from agent.command import CommandAgent  # noqa: E402
from agent.lexicon import languages  # noqa: E402
from agent.llm import DEFAULT_MODEL, start_embedded  # noqa: E402
from benchmarks.agent import photos  # noqa: E402
from tests.agent.devset import agent_ctx, build_world, copy_world, run_case  # noqa: E402
from tests.agent.heldout_i18n import CASES  # noqa: E402
from tests.tools.conftest import FakeBackends  # noqa: E402
from tools.catalog import command_tools  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "agent_heldout_i18n.json"


def rates(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per language: passed, run, rate, and the failed cases' kinds."""
    out: dict[str, dict[str, Any]] = {}
    for lang in dict.fromkeys(r["lang"] for r in rows):
        mine = [r for r in rows if r["lang"] == lang]
        ok = sum(r["success"] for r in mine)
        failed = sorted({r["kind"] for r in mine if not r["success"]})
        out[lang] = {"passed": ok, "run": len(mine), "rate": round(ok / len(mine), 3), "failed_kinds": failed}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", type=Path, default=Path.home() / ".labelwright" / "models")
    parser.add_argument("--lang", default="en,es", help="Languages to run, comma-separated.")
    parser.add_argument("--cases", default="", help="Comma-separated case names (default: all).")
    parser.add_argument("--budget-s", type=float, default=1200, help="Stop starting cases after this.")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    langs = [lang.strip() for lang in args.lang.split(",") if lang.strip()]
    unknown = [lang for lang in langs if lang not in CASES]
    if unknown:
        raise SystemExit(f"--lang must be some of {sorted(CASES)}, got {unknown}")
    names = {n for n in args.cases.split(",") if n}
    pools = [[(lang, c) for c in CASES[lang] if not names or c.name in names] for lang in langs]
    order = [pair for group in itertools.zip_longest(*pools) for pair in group if pair is not None]

    lexicon = languages("en,es")
    scratch = Path(tempfile.mkdtemp(prefix="lw-heldout-i18n-"))
    world = build_world(scratch / "world", photos())
    started = time.perf_counter()
    results: dict[str, Any] = {
        "model": args.model,
        "threads": args.threads,
        "lexicon": lexicon.name,
        "load_before": os.getloadavg(),
        "cpus": os.cpu_count(),
        "budget_s": args.budget_s,
    }
    handle = start_embedded(args.models, args.model, threads=args.threads, n_ctx=4096)
    rows: list[dict[str, Any]] = []
    try:
        ctx = agent_ctx(world, FakeBackends())
        CommandAgent.start(handle.client, handle.model, ctx, command_tools(), lexicon=lexicon).warm_up()
        results["warm_s"] = round(time.perf_counter() - started, 1)
        for i, (lang, case) in enumerate(order):
            if time.perf_counter() - started > args.budget_s:
                results["not_run"] = [c.name for _, c in order[i:]]
                break
            outcome = run_case(
                case, handle.client, handle.model, copy_world(world, scratch / f"case{i}"), FakeBackends(),
                lexicon=lexicon,
            )  # fmt: skip
            row = {
                "lang": lang,
                "case": case.name,
                "kind": case.kind,
                "turns": case.turns,
                "success": outcome.ok,
                "reason": outcome.reason,
                "seconds": round(outcome.seconds, 1),
                "answers": outcome.answers,
                "calls": [[r.name, r.args, r.error] for t in outcome.turns for r in t.tool_calls],
            }
            rows.append(row)
            mark = "ok  " if outcome.ok else "FAIL"
            print(f"{mark} {lang} {case.name:28s} {outcome.seconds:6.1f}s {outcome.reason or ''}", flush=True)
            save(args.out, results, rows)
    finally:
        handle.close()
    results["load_after"] = os.getloadavg()
    save(args.out, results, rows)
    for lang, r in rates(rows).items():
        print(f"{lang}: {r['passed']}/{r['run']} = {r['rate']:.0%}; failed kinds {r['failed_kinds']}")
    if results.get("not_run"):
        print(f"not run (budget): {len(results['not_run'])} cases")
    print(f"wrote {args.out}")


def save(path: Path, results: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({**results, "per_language": rates(rows), "cases": rows}, indent=1, default=str)
    )


if __name__ == "__main__":
    main()
