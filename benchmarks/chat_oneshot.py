"""Benchmark: a one-shot `labelwright chat` command, end to end, each call a new CLI process.

    python benchmarks/chat_oneshot.py [--model qwen2.5-coder:1.5b] [--threads 2] [--calls 3]
        [--models DIR] [--no-baseline]

Builds a throwaway data home with a project of one image and 4 person + 1 bus annotations, then
times ``labelwright chat --project bench "how many person annotations are there?"`` as a user
runs it (a fresh Python process per call, wall time from start to exit):

1. before: ``LABELWRIGHT_LLM_KEEP_ALIVE_S=0``, the old way: each call loads llama.cpp in-process,
   reads the weights and evaluates the system+tools prompt, and stops it on exit;
2. after: the default, the shared endpoint (agent.shared_llm): the first call starts it, the
   next ``--calls - 1`` calls find it loaded with the prompt prefix in its KV cache.

Refuses to run while a shared endpoint of the model is already up (it would make call 1 warm);
stops the endpoint it started at the end. Prints a table and writes
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


def one_call(env: dict[str, str], model: str, timeout: float) -> dict[str, Any]:
    command = [sys.executable, "-c", "from server.cli import main; main()", "chat", "--project", "bench"]
    command += ["--model", model]
    started = time.perf_counter()
    done = subprocess.run(
        [*command, QUESTION], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    wall = time.perf_counter() - started
    answer = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr.strip()[-300:]
    return {
        "wall_s": round(wall, 2),
        "rc": done.returncode,
        "answer": answer,
        "right": str(PERSONS) in answer,
    }


def main() -> None:
    from agent.llm import DEFAULT_MODEL
    from agent.shared_llm import list_endpoints, stop_endpoints

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    default_models = os.environ.get("LABELWRIGHT_MODELS", str(Path.home() / ".labelwright" / "models"))
    parser.add_argument("--models", type=Path, default=Path(default_models))
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calls", type=int, default=3, help="calls with the shared endpoint (2..10)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the in-process (before) call")
    args = parser.parse_args()
    if not 2 <= args.calls <= 10:
        raise SystemExit(f"--calls must be 2..10, got {args.calls}")
    if list_endpoints(args.models):
        raise SystemExit(
            f"a shared LLM endpoint is already running for {args.models}: `labelwright llm stop` first"
        )
    rows: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="lw-chat-bench-") as tmp:
        home = Path(tmp) / "home"
        make_home(home)
        env = {**os.environ, "LABELWRIGHT_HOME": str(home), "LABELWRIGHT_MODELS": str(args.models),
               "LABELWRIGHT_LLM_THREADS": str(args.threads), "PYTHONPATH": str(REPO)}  # fmt: skip
        env.pop("OLLAMA_HOST", None)
        env.pop("LABELWRIGHT_OLLAMA_HOST", None)
        try:
            if not args.no_baseline:
                print("before: in-process LLM per call ...", flush=True)
                rows.append(
                    (
                        "before (in-process, every call)",
                        one_call({**env, "LABELWRIGHT_LLM_KEEP_ALIVE_S": "0"}, args.model, 600),
                    )
                )
            for i in range(args.calls):
                print(f"after: shared endpoint, call {i + 1} ...", flush=True)
                label = (
                    "after, call 1 (starts the endpoint)" if i == 0 else f"after, call {i + 1} (reuses it)"
                )
                rows.append((label, one_call(env, args.model, 600)))
        finally:
            stopped = stop_endpoints(args.models)
    print(f"\n{'call':<40}{'wall s':>8}{'rc':>4}{'right':>7}  answer")
    for label, r in rows:
        print(f"{label:<40}{r['wall_s']:>8}{r['rc']:>4}{str(r['right']):>7}  {r['answer'][:70]}")
    load = os.getloadavg()
    print(f"load (1, 5, 15 min): {', '.join(f'{v:.2f}' for v in load)}; {len(stopped)} endpoint(s) stopped")
    out = REPO / "benchmarks" / "results" / "chat_oneshot.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"model": args.model, "threads": args.threads, "question": QUESTION, "load_average": load,
              "calls": [{"call": label, **r} for label, r in rows]}  # fmt: skip
    out.write_text(json.dumps(result, indent=2))
    print(f"saved {out}")


if __name__ == "__main__":
    main()
