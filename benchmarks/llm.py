"""Benchmark: the embedded LLM answering an agent-style request with the real vision tool schemas.

    .venv/bin/python benchmarks/llm.py [--model qwen2.5-coder:1.5b] [--threads 2] [--models DIR]

1. Start: pre-read of the GGUF (sequential, into the page cache) and llama.cpp load.
2. Cold: "How many cars are there?" with the system prompt and every tool of ``vision_tools()``,
   nothing cached: time to the first tool call (native, or recovered from text as the loop does).
3. Warm: another question with the same system+tools prefix, which llama.cpp reuses from its
   prompt cache: time to the first tool call again.
4. Decode: a plain 64-token answer, for generation tokens/s.

Numbers come from the responses themselves (Ollama's prompt_eval_* / eval_* fields). Prints a
table and writes benchmarks/results/llm-<threads>t.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent.llm import DEFAULT_MODEL, start_embedded  # noqa: E402
from agent.tool_call_recovery import recover_tool_calls  # noqa: E402
from tools.catalog import vision_tools  # noqa: E402

SYSTEM = (
    "You are labelwright's labeling assistant. Answer by calling one of the tools; "
    "after its result, reply to the user in one short sentence."
)
GREEDY = {"temperature": 0, "seed": 1, "num_predict": 96}


def rate(tokens: int | None, duration_ns: int | None) -> float | None:
    return round(tokens / (duration_ns / 1e9), 1) if tokens and duration_ns else None


def timed_chat(client: Any, model: str, messages: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    started = time.perf_counter()
    reply = client.chat(model, messages, **kwargs)
    wall = time.perf_counter() - started
    message = reply.message
    native = [(c.function.name, dict(c.function.arguments)) for c in message.tool_calls or []]
    recovered = [(c.name, c.arguments) for c in recover_tool_calls(message.content or "")[0]]
    return {
        "wall_s": round(wall, 2),
        "prompt_tokens_evaluated": reply.prompt_eval_count,
        "prompt_tok_s": rate(reply.prompt_eval_count, reply.prompt_eval_duration),
        "generated_tokens": reply.eval_count,
        "gen_tok_s": rate(reply.eval_count, reply.eval_duration),
        "call": (native or recovered or [None])[0],
        "call_form": "native" if native else "text (recovered)" if recovered else "none",
        "content": message.content,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", type=Path, default=Path.home() / ".labelwright" / "models")
    args = parser.parse_args()

    started = time.perf_counter()
    handle = start_embedded(args.models, args.model, threads=args.threads, n_ctx=8192)
    llm = handle.embedded
    results: dict[str, Any] = {
        "model": args.model,
        "threads": args.threads,
        "start": {"preread_s": round(llm.preread_s, 2), "load_s": round(llm.load_s, 2)},
        "start_total_s": round(time.perf_counter() - started, 2),
    }
    tools = vision_tools().schemas()
    try:
        for name, question in (("cold", "How many cars are there?"), ("warm", "How many people are there?")):
            messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
            results[name] = timed_chat(handle.client, args.model, messages, tools=tools, options=GREEDY)
        write = [{"role": "user", "content": "Write four sentences about cats."}]
        decode_options = {**GREEDY, "num_predict": 64}
        results["decode"] = timed_chat(handle.client, args.model, write, options=decode_options)
    finally:
        handle.close()

    print(f"{args.model}, {args.threads} threads, {len(tools)} tools")
    print(f"start: pre-read {results['start']['preread_s']} s, load {results['start']['load_s']} s")
    header = ("run", "wall s", "prompt tok", "prompt tok/s", "gen tok", "gen tok/s")
    print("{:8} {:>7} {:>10} {:>12} {:>7} {:>9}  call".format(*header))
    for name in ("cold", "warm", "decode"):
        r = results[name]
        print(
            f"{name:8} {r['wall_s']:>7} {r['prompt_tokens_evaluated']:>10} {r['prompt_tok_s']!s:>12} "
            f"{r['generated_tokens']:>7} {r['gen_tok_s']!s:>9}  {r['call']} [{r['call_form']}]"
        )
    out = REPO / "benchmarks" / "results" / f"llm-{args.threads}t.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
