"""The cost of ``LABELWRIGHT_DURABLE``: single-annotation commits with synchronous=NORMAL vs FULL.

Each commit is what one API create does: open a change batch, insert one annotation (with its
history event and the counters the triggers keep), commit. Both settings run in the same process
against their own database file in the same folder (on the disk under test: not a tmpfs, where
fsync costs nothing), in alternating rounds so a change in the machine's load hits both alike.

    .venv/bin/python benchmarks/durability.py                      # 5 rounds x 200 commits each
    .venv/bin/python benchmarks/durability.py --rounds 3 --commits 100 --dir ~/.labelwright/bench
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store.annotations import create_annotation  # noqa: E402
from store.categories import ensure_categories  # noqa: E402
from store.db import new_session, open_engine  # noqa: E402
from store.history import begin_change  # noqa: E402
from store.images import add_image  # noqa: E402
from store.projects import create_project  # noqa: E402

RESULTS = Path(__file__).with_name("results") / "durability.json"
MAX_COMMITS = 5_000
MAX_ROUNDS = 20
MODES = {"NORMAL": False, "FULL": True}  # PRAGMA synchronous -> open_engine(durable=...)


def seed(db: Path, durable: bool) -> tuple[Any, int, int, int]:
    engine = open_engine(db, durable=durable)
    with new_session(engine) as s:
        project = create_project(s, name="bench")
        image = add_image(
            s,
            project_id=project.id,
            file_name="a.jpg",
            path="images/a.jpg",
            sha256="0" * 64,
            width=640,
            height=480,
        )
        category = ensure_categories(s, project_id=project.id, names=["person"])[0]
        s.commit()
        return engine, project.id, image.id, category.id  # type: ignore[return-value]


def commits(engine: Any, project_id: int, image_id: int, category_id: int, n: int) -> list[float]:
    """Seconds taken by each of ``n`` single-annotation commits."""
    times = []
    with new_session(engine) as s:
        for i in range(n):
            started = time.perf_counter()
            batch = begin_change(s, project_id=project_id, actor="bench", description="create")
            create_annotation(
                s, batch=batch, image_id=image_id, category_id=category_id, bbox=[i % 600, 1, 20, 20]
            )
            s.commit()
            times.append(time.perf_counter() - started)
    return times


def summarize(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "commits": len(times),
        "median_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 3),
        "commits_per_s": round(len(times) / sum(times), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--commits", type=int, default=200, help=f"commits per round and mode (<= {MAX_COMMITS})"
    )
    parser.add_argument("--rounds", type=int, default=5, help=f"alternating rounds (<= {MAX_ROUNDS})")
    parser.add_argument(
        "--dir", type=Path, default=None, help="folder for the two databases (default: a temp dir)"
    )
    args = parser.parse_args()
    if not (1 <= args.commits <= MAX_COMMITS and 1 <= args.rounds <= MAX_ROUNDS):
        parser.error(f"--commits must be 1..{MAX_COMMITS} and --rounds 1..{MAX_ROUNDS}")
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="durability-") as tmp:
        seeded = {mode: seed(Path(tmp) / f"{mode.lower()}.db", durable) for mode, durable in MODES.items()}
        times: dict[str, list[float]] = {mode: [] for mode in MODES}
        load_before = os.getloadavg()[0]
        for round_ in range(args.rounds):
            order = list(MODES) if round_ % 2 == 0 else list(reversed(MODES))
            for mode in order:
                times[mode] += commits(*seeded[mode], args.commits)
        for engine, *_ in seeded.values():
            engine.dispose()
        filesystem = os.statvfs(tmp)
    rows = {mode: summarize(t) for mode, t in times.items()}
    result = {
        "rounds": args.rounds,
        "commits_per_round": args.commits,
        "folder": str(args.dir or tempfile.gettempdir()),
        "block_size": filesystem.f_bsize,
        "load_average_1m": {"before": load_before, "after": os.getloadavg()[0]},
        "modes": rows,
        "full_over_normal_median": round(rows["FULL"]["median_ms"] / rows["NORMAL"]["median_ms"], 2),
    }
    print(f"{'synchronous':<12}{'commits':>9}{'median ms':>11}{'p95 ms':>9}{'commits/s':>11}")
    for mode, row in rows.items():
        print(
            f"{mode:<12}{row['commits']:>9}{row['median_ms']:>11}{row['p95_ms']:>9}{row['commits_per_s']:>11}"
        )
    print(f"FULL / NORMAL median: {result['full_over_normal_median']}x; load {result['load_average_1m']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(f"saved {RESULTS}")


if __name__ == "__main__":
    main()
