"""Benchmark: the command agent on the dev set with the embedded LLM (default Qwen2.5-Coder-1.5B).

    .venv/bin/python benchmarks/agent.py [--cases name,name] [--threads 2] [--models DIR] [--constrained]

Per command: success (judged by the store, as tests/agent/test_devset.py does), user turns, tool
calls, time to the first tool call, total time and generation tokens/s (from the Ollama-protocol
responses' eval fields). The system+tools prefix is warmed once at start, as ``labelwright chat``
does, so the times are the prompt-cached ones. Prints a table; writes benchmarks/results/agent.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent.command import CommandAgent  # noqa: E402
from agent.llm import DEFAULT_MODEL, start_embedded  # noqa: E402
from tests.agent.devset import CASES, HELDOUT, agent_ctx, build_world, copy_world, run_case  # noqa: E402
from tests.tools.conftest import FakeBackends  # noqa: E402
from tools.catalog import command_tools  # noqa: E402


class Metered:
    """Forwards ``chat`` and adds up the responses' generation counters."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.tokens = 0
        self.ns = 0

    def chat(self, *args: Any, **kwargs: Any) -> Any:
        reply = self.client.chat(*args, **kwargs)
        self.tokens += reply.eval_count or 0
        self.ns += reply.eval_duration or 0
        return reply


def photos() -> dict[str, Path]:
    import importlib.util

    spec = importlib.util.find_spec("ultralytics")
    assert spec is not None and spec.origin is not None
    assets = Path(spec.origin).parent / "assets"
    return {p.name: p for p in (assets / "bus.jpg", assets / "zidane.jpg")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", type=Path, default=Path.home() / ".labelwright" / "models")
    parser.add_argument("--cases", default="", help="Comma-separated case names (default: all).")
    parser.add_argument(
        "--set", choices=["dev", "heldout", "both"], default="both", help="Which cases to run."
    )
    parser.add_argument("--spread", action="store_true", help="Order cases round-robin over kinds.")
    parser.add_argument("--constrained", action="store_true")
    args = parser.parse_args()
    names = [n for n in args.cases.split(",") if n]
    pool = {"dev": CASES, "heldout": HELDOUT, "both": CASES + HELDOUT}[args.set]
    heldout = {c.name for c in HELDOUT}
    cases = [c for c in pool if not names or c.name in names]
    if args.spread:  # a run cut short still covers every kind of command
        by_kind: dict[str, list[Any]] = {}
        for case in cases:
            by_kind.setdefault(case.kind, []).append(case)
        cases = [c for group in itertools.zip_longest(*by_kind.values()) for c in group if c is not None]

    scratch = Path(tempfile.mkdtemp(prefix="lw-agent-bench-"))
    world = build_world(scratch / "world", photos())
    started = time.perf_counter()
    handle = start_embedded(args.models, args.model, threads=args.threads, n_ctx=8192)
    client = Metered(handle.client)
    results: dict[str, Any] = {"model": args.model, "threads": args.threads, "constrained": args.constrained}
    results["start_s"] = round(time.perf_counter() - started, 2)
    rows = []
    try:
        agent = CommandAgent.start(client, handle.model, agent_ctx(world, FakeBackends()), command_tools())
        warm = time.perf_counter()
        agent.warm_up()
        results["warm_up_s"] = round(time.perf_counter() - warm, 2)
        for i, case in enumerate(cases):
            tokens, ns = client.tokens, client.ns
            outcome = run_case(
                case,
                client,
                handle.model,
                copy_world(world, scratch / f"case{i}"),
                FakeBackends(),
                constrained=args.constrained,
            )
            firsts = [t.first_tool_s for t in outcome.turns if t.first_tool_s is not None]
            row = {
                "case": case.name,
                "set": "heldout" if case.name in heldout else "dev",
                "kind": case.kind,
                "success": outcome.ok,
                "reason": outcome.reason,
                "turns": len(outcome.turns),
                "tool_calls": sum(len(t.tool_calls) for t in outcome.turns),
                "first_tool_s": round(firsts[0], 2) if firsts else None,
                "total_s": round(outcome.seconds, 2),
                "gen_tok_s": round((client.tokens - tokens) / ((client.ns - ns) / 1e9), 1)
                if client.ns > ns
                else None,
                "answers": outcome.answers,
                "calls": [[r.name, r.args, r.error] for t in outcome.turns for r in t.tool_calls],
            }
            rows.append(row)
            print(_line(row), flush=True)
            save(results, rows)
    finally:
        handle.close()
    print(f"\n{summary(results, rows)}; start {results['start_s']} s, warm-up {results['warm_up_s']} s")
    print(f"wrote {save(results, rows)}")


def summary(results: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    firsts = sorted(r["first_tool_s"] for r in rows if r["first_tool_s"] is not None)
    results.update(cases=rows, median_first_tool_s=firsts[len(firsts) // 2] if firsts else None)
    parts = []
    for name in ("dev", "heldout"):
        chosen = [r for r in rows if r["set"] == name]
        ok = sum(r["success"] for r in chosen)
        results[f"{name}_success_rate"] = round(ok / len(chosen), 3) if chosen else None
        if chosen:
            parts.append(f"{name} {ok}/{len(chosen)} succeeded")
    return f"{'; '.join(parts)}; median first tool call {results['median_first_tool_s']} s"


def save(results: dict[str, Any], rows: list[dict[str, Any]]) -> Path:
    """Rewritten after every case, so an interrupted run keeps what it measured."""
    summary(results, rows)
    out = REPO / "benchmarks" / "results" / "agent.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    return out


def _line(row: dict[str, Any]) -> str:
    first = "-" if row["first_tool_s"] is None else f"{row['first_tool_s']:.1f}"
    rate = "-" if row["gen_tok_s"] is None else f"{row['gen_tok_s']:.1f}"
    mark = "ok  " if row["success"] else "FAIL"
    return (
        f"{mark} {row['case']:20s} turns {row['turns']}  calls {row['tool_calls']}  first {first:>5s} s  "
        f"total {row['total_s']:6.1f} s  {rate:>5s} tok/s  {row['reason'] or ''}"
    )


if __name__ == "__main__":
    main()
