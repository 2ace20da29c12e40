"""Benchmark: a one-shot `labelwright chat` command, end to end, each call a new CLI process.

    python benchmarks/chat_oneshot.py [--model qwen2.5-coder:1.5b] [--threads N] [--before-threads 2]
        [--calls 3] [--models DIR] [--baseline]

Builds a throwaway data home with a project of one image and 4 person + 1 bus annotations, then
times ``labelwright chat --project bench "how many person annotations are there?"`` as a user
runs it (a fresh Python process per call, wall time from start to exit):

1. with ``--baseline``: ``LABELWRIGHT_LLM_KEEP_ALIVE_S=0``, the oldest way: each call loads
   llama.cpp in-process, reads the weights and evaluates the system+tools prompt, and stops it;
2. before: the shared endpoint (agent.shared_llm) with ``--before-threads`` llama.cpp threads
   (2, the old default; 0 skips these rows): the first call starts it, the next ``--calls - 1``
   find it loaded with the prompt prefix in its KV cache; then it is stopped;
   ``--before-repo`` runs those calls with another checkout's code (the commit before a change);
3. after: the same with ``--threads`` (default: the machine's, agent.llm.default_threads);
4. after, restarted (``--restarts``, default 1): the endpoint stopped and the call made again,
   so the new endpoint finds the system+tools prefix call 1 saved (agent.prompt_cache) and
   restores it instead of reading it. The saved prefixes are removed first, so call 1 is cold.

The endpoint logs llama.cpp's timings of every request; each row shows its model rounds: tokens
taken from the prompt cache, evaluated and generated, and the seconds of prompt evaluation and of
generation (sampling included). ``other s`` is the rest of the wall time: process start, imports,
the store, the tool. Refuses to run while a shared endpoint of the model is already up (it would
make call 1 warm); stops the endpoints it started. Prints a table and writes
benchmarks/results/chat_oneshot.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

QUESTION = "how many person annotations are there?"
PERSONS = 4


def make_home(home: Path) -> None:
    """A data home with project ``bench``: one image, 4 person and 1 bus annotations."""
    from PIL import Image

    from store.annotations import create_annotation
    from store.categories import ensure_categories
    from store.db import new_session, open_engine
    from store.history import begin_change
    from store.ingest import ingest

    source = home.parent / "photos"
    source.mkdir(parents=True)
    Image.new("RGB", (640, 480), (90, 120, 150)).save(source / "street.png")
    engine = open_engine(home / "labelwright.db")
    with new_session(engine) as session:
        report = ingest(session, home=home, project_name="bench", source=source)
        ((_, image_id),) = report.added
        person, bus = ensure_categories(session, project_id=report.project_id, names=["person", "bus"])
        batch = begin_change(session, project_id=report.project_id, actor="bench", description="seed")
        boxes = [[10, 10, 50, 120], [100, 20, 40, 110], [200, 30, 45, 100], [300, 40, 50, 130]]
        for box in boxes:
            create_annotation(session, batch=batch, image_id=image_id, category_id=person.id, bbox=box)
        create_annotation(
            session, batch=batch, image_id=image_id, category_id=bus.id, bbox=[400, 100, 200, 150]
        )
        session.commit()
    engine.dispose()


def one_call(env: dict[str, str], model: str, timeout: float, log: Path, repo: Path = REPO) -> dict[str, Any]:
    """One CLI call of ``repo``'s code; its model rounds from the lines the endpoint's log gained."""
    from agent.shared_llm import TIMINGS

    seen = log.read_text().count("\n") if log.exists() else 0
    command = [sys.executable, "-c", "from server.cli import main; main()", "chat", "--project", "bench"]
    command += ["--model", model]
    started = time.perf_counter()
    done = subprocess.run(
        [*command, QUESTION],
        env={**env, "PYTHONPATH": str(repo)},
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    wall = time.perf_counter() - started
    answer = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr.strip()[-300:]
    lines = log.read_text().splitlines()[seen:] if log.exists() else []
    rounds = [json.loads(line[len(TIMINGS) :]) for line in lines if line.startswith(TIMINGS)]
    llm_s = sum(r.get("prompt_ms", 0) + r.get("predicted_ms", 0) for r in rounds) / 1000
    return {
        "wall_s": round(wall, 2),
        "rc": done.returncode,
        "answer": answer,
        "right": str(PERSONS) in answer,
        "rounds": rounds,
        "other_s": round(wall - llm_s, 2) if rounds else None,
        "load_1min": round(os.getloadavg()[0], 2),
    }


def _rounds(r: dict[str, Any]) -> str:
    """``cached+evaluated->generated (prompt s / generation s)`` per model round."""
    parts = [
        f"{x.get('cache_n', 0)}+{x.get('prompt_n', 0)}->{x.get('predicted_n', 0)} "
        f"({x.get('prompt_ms', 0) / 1000:.1f}/{x.get('predicted_ms', 0) / 1000:.1f})"
        for x in r["rounds"]
    ]
    return "; ".join(parts) or "-"


def main() -> None:
    from agent.llm import DEFAULT_MODEL, default_threads, model_path, prompt_cache_dir
    from agent.prompt_cache import SUFFIX
    from agent.shared_llm import list_endpoints, state_path, stop_endpoints

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    default_models = os.environ.get("LABELWRIGHT_MODELS", str(Path.home() / ".labelwright" / "models"))
    parser.add_argument("--models", type=Path, default=Path(default_models))
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--threads", type=int, default=default_threads(), help="after: llama.cpp threads")
    parser.add_argument("--before-threads", type=int, default=2, help="before: llama.cpp threads (0: skip)")
    parser.add_argument("--calls", type=int, default=3, help="calls per shared endpoint (2..10)")
    parser.add_argument(
        "--before-repo",
        type=Path,
        default=REPO,
        help="before: run this checkout's code (e.g. an older commit)",
    )
    parser.add_argument("--restarts", type=int, default=1, help="after: restarts, a call each")
    parser.add_argument("--baseline", action="store_true", help="also time the in-process call (slow)")
    args = parser.parse_args()
    if not 2 <= args.calls <= 10 or not 0 <= args.restarts <= 5:
        raise SystemExit(f"--calls must be 2..10 and --restarts 0..5, got {args.calls}, {args.restarts}")
    if args.threads < 1 or args.before_threads < 0:
        raise SystemExit(
            f"--threads must be >= 1 and --before-threads >= 0, got {args.threads}, {args.before_threads}"
        )
    if list_endpoints(args.models):
        raise SystemExit(
            f"a shared LLM endpoint is already running for {args.models}: `labelwright llm stop` first"
        )
    log = state_path(args.models, args.model).with_suffix(".log")
    cache = prompt_cache_dir(model_path(args.models, args.model))
    for saved in cache.glob("*" + SUFFIX) if cache is not None else []:
        saved.unlink()  # so that call 1 reads the prefix, as on a fresh machine
    rows: list[tuple[str, dict[str, Any]]] = []
    stopped = 0
    with tempfile.TemporaryDirectory(prefix="lw-chat-bench-") as tmp:
        home = Path(tmp) / "home"
        make_home(home)
        env = {**os.environ, "LABELWRIGHT_HOME": str(home), "LABELWRIGHT_MODELS": str(args.models),
               "PYTHONPATH": str(REPO)}  # fmt: skip
        env.pop("OLLAMA_HOST", None)
        env.pop("LABELWRIGHT_OLLAMA_HOST", None)
        try:
            if args.baseline:
                print("in-process LLM per call ...", flush=True)
                baseline = {**env, "LABELWRIGHT_LLM_KEEP_ALIVE_S": "0", "LABELWRIGHT_LLM_THREADS": "2"}
                rows.append(("in-process, every call, 2 thr", one_call(baseline, args.model, 900, log)))
            runs = [("before", args.before_threads)] if args.before_threads else []
            for tag, threads in [*runs, ("after", args.threads)]:
                repo = args.before_repo if tag == "before" else REPO
                for i in range(args.calls):
                    print(f"{tag}: shared endpoint, {threads} thread(s), call {i + 1} ...", flush=True)
                    what = "starts the endpoint" if i == 0 else "reuses it"
                    if i == 0:
                        log.unlink(missing_ok=True)  # the new endpoint rewrites it
                    label = f"{tag}, {threads} thr, call {i + 1} ({what})"
                    rows.append(
                        (
                            label,
                            one_call(
                                {**env, "LABELWRIGHT_LLM_THREADS": str(threads)}, args.model, 900, log, repo
                            ),
                        )
                    )
                stopped += len(stop_endpoints(args.models))
            after = {**env, "LABELWRIGHT_LLM_THREADS": str(args.threads)}
            for i in range(args.restarts):
                print(f"after: endpoint restarted ({i + 1}), call 1 ...", flush=True)
                log.unlink(missing_ok=True)
                label = f"after, {args.threads} thr, restart {i + 1} (restores)"
                rows.append((label, one_call(after, args.model, 900, log)))
                stopped += len(stop_endpoints(args.models))
        finally:
            stopped += len(stop_endpoints(args.models))
    head = f"\n{'call':<44}{'wall s':>8}{'other s':>8}{'load':>6}{'right':>6}  rounds: "
    print(head + "cached+evaluated->generated tokens (prompt s/generation s)")
    for label, r in rows:
        cells = f"{r['wall_s']:>8}{str(r['other_s']):>8}{r['load_1min']:>6}{str(r['right']):>6}"
        print(f"{label:<44}{cells}  {_rounds(r)}")
    for label, r in rows:
        print(f"  {label}: {r['answer'][:90]}")
    load = os.getloadavg()
    print(f"load (1, 5, 15 min): {', '.join(f'{v:.2f}' for v in load)}; {stopped} endpoint(s) stopped")
    out = REPO / "benchmarks" / "results" / "chat_oneshot.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"model": args.model, "threads": args.threads, "before_threads": args.before_threads,
              "restarts": args.restarts,
              "question": QUESTION, "load_average": load,
              "calls": [{"call": label, **r} for label, r in rows]}  # fmt: skip
    out.write_text(json.dumps(result, indent=2))
    print(f"saved {out}")


if __name__ == "__main__":
    main()
