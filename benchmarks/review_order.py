"""Benchmark: wrong proposals found vs proposals reviewed, review order against random order.

    python benchmarks/review_order.py [--n 2000] [--reviewed 0.1] [--findings 100]

The planted set is the one of tests/ops/test_review_order.py (tests/ops/planted.py): real photos,
``n`` scored proposals, each right with P = 0.3 + 0.7 * score, a ``reviewed`` share already decided
by a reviewer, and ``findings`` audit findings on the rest (three in four on a wrong proposal).
Prints errors found after k reviews for: the review order (focus errors), score ascending (what a
person sorting the table by score gets) and random order (mean of 50 shuffles); writes
benchmarks/results/review_order.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ops import review_order  # noqa: E402
from tests.ops.planted import CALLER, plant  # noqa: E402

BUDGETS = (25, 50, 100, 200, 400, 800, 1600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--reviewed", type=float, default=0.1)
    parser.add_argument("--findings", type=int, default=100)
    args = parser.parse_args()
    spec = importlib.util.find_spec("ultralytics")
    assert spec is not None and spec.origin is not None
    assets = Path(spec.origin).parent / "assets"
    photos = {p.name: p for p in (assets / "bus.jpg", assets / "zidane.jpg")}
    with tempfile.TemporaryDirectory() as tmp:
        planted = plant(Path(tmp) / "home", photos, n=args.n, reviewed=args.reviewed, findings=args.findings)
        started = time.perf_counter()
        order = [
            item
            for offset in range(0, len(planted.held_out), review_order.MAX_LIMIT)
            for item in review_order.queue(planted.env, CALLER, planted.project_id, limit=1000, offset=offset)
        ]
        seconds = time.perf_counter() - started
        planted.env.engine.dispose()
    held = planted.held_out
    wrong = {i: not planted.right[i] for i in held}
    ours = np.cumsum([wrong[i.annotation_id] for i in order])
    by_score = np.cumsum([wrong[i] for i in sorted(held, key=lambda i: (planted.score[i], i))])
    rng = np.random.default_rng(0)
    shuffled = np.mean([np.cumsum([wrong[i] for i in rng.permutation(held)]) for _ in range(50)], axis=0)
    budgets = [k for k in BUDGETS if k <= len(held)]
    rows = [
        {"reviewed": k, "review_order": int(ours[k - 1]), "score_ascending": int(by_score[k - 1]),
         "random": round(float(shuffled[k - 1]), 1)}
        for k in budgets
    ]  # fmt: skip
    result = {
        "pending": len(held), "wrong_pending": int(sum(wrong.values())), "n": args.n,
        "reviewed_share": args.reviewed, "findings": args.findings, "queue_seconds": round(seconds, 3),
        "load_average": os.getloadavg()[0], "curve": rows,
    }  # fmt: skip
    print(f"{len(held)} pending proposals, {result['wrong_pending']} wrong; queue built in {seconds:.2f} s")
    print(f"{'reviewed':>9} {'review order':>13} {'by score':>9} {'random':>8}")
    for r in rows:
        print(f"{r['reviewed']:>9} {r['review_order']:>13} {r['score_ascending']:>9} {r['random']:>8}")
    out = Path(__file__).resolve().parent / "results" / "review_order.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
