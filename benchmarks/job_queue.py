"""The shared job queue and the event wake-up: what the database costs per job and per image.

For each database (a temp SQLite file, and with ``--postgres`` a throwaway PostgreSQL cluster
started like the tests do, or any ``--database-url``), in one run:

- claims: N one-item jobs, W threads claiming, stepping and finishing them (each thread a
  worker with its own session): jobs/s, and that every job was handed out exactly once;
- steps: one worker stepping a job of S items with no model work (cursor + job event, one
  commit per item, as the runner does): the store's overhead per image, in ms;
- wake (PostgreSQL): a listener on another connection, M commits of one event each: the time
  from the writer's commit to the listener's wake-up, p50/p95 in ms.

    .venv/bin/python benchmarks/job_queue.py --postgres
    .venv/bin/python benchmarks/job_queue.py --database-url postgresql+psycopg://u@host/db
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store import jobs  # noqa: E402
from store.db import new_session, open_engine  # noqa: E402
from store.events import add_event  # noqa: E402
from store.notify import EventListener  # noqa: E402
from store.projects import create_project  # noqa: E402

RESULTS = Path(__file__).with_name("results") / "job_queue.json"


def claims(engine: Any, project_id: int, n: int, workers: int) -> dict[str, Any]:
    with new_session(engine) as session:
        for _ in range(n):
            session.add(jobs.Job(project_id=project_id, kind="bench", total=1))
        session.commit()
    taken: list[int] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        with new_session(engine) as session:
            while (job := jobs.claim_next_job(session, kinds=["bench"], worker=name)) is not None:
                jobs.advance_cursor(session, job_id=job.id, worker=name, cursor=1)
                add_event(session, project_id=project_id, kind="job", action="running", ids=[job.id])
                session.commit()
                jobs.finish_job(session, job_id=job.id, state="done")
                with lock:
                    taken.append(job.id)

    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(f"bench:{os.getpid()}:{i}",)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    return {
        "jobs": n,
        "workers": workers,
        "jobs_per_s": round(n / seconds, 1),
        "once": len(taken) == len(set(taken)) == n,
    }


def steps(engine: Any, project_id: int, n: int) -> dict[str, Any]:
    with new_session(engine) as session:
        job = jobs.create_job(session, project_id=project_id, kind="steps", total=n)
        assert jobs.claim_job(session, job_id=job.id, worker="bench")
        started = time.perf_counter()
        for cursor in range(1, n + 1):
            jobs.advance_cursor(session, job_id=job.id, worker="bench", cursor=cursor)
            add_event(session, project_id=project_id, kind="job", action="running", ids=[job.id])
            session.commit()
        seconds = time.perf_counter() - started
    return {"items": n, "ms_per_item": round(1000 * seconds / n, 3)}


def wake(engine: Any, project_id: int, n: int) -> dict[str, Any] | None:
    if engine.dialect.name != "postgresql":
        return None
    latencies: list[float] = []
    committed = threading.Event()
    at: list[float] = [0.0]
    with EventListener(engine) as listener:
        ready = threading.Event()

        def listen() -> None:
            ready.set()
            for _ in range(n):
                if listener.wait(5.0):
                    latencies.append(time.perf_counter() - at[0])
                committed.set()

        thread = threading.Thread(target=listen)
        thread.start()
        ready.wait()
        with new_session(engine) as session:
            for _ in range(n):
                time.sleep(0.01)
                committed.clear()
                add_event(session, project_id=project_id, kind="annotation", action="created", ids=[1])
                session.commit()
                at[0] = time.perf_counter()
                committed.wait(5.0)
        thread.join()
    ms = sorted(1000 * max(x, 0.0) for x in latencies)
    return {
        "commits": n,
        "woken": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 2),
    }


def run(url: str | Path, args: argparse.Namespace) -> dict[str, Any]:
    engine = open_engine(url)
    with new_session(engine) as session:
        project_id = create_project(session, name=f"bench {time.time()}").id
    out = {
        "dialect": engine.dialect.name,
        "claims": claims(engine, project_id, args.jobs, args.workers),
        "steps": steps(engine, project_id, args.steps),
        "wake": wake(engine, project_id, args.commits),
    }
    engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", action="append", default=[], help="a database to measure (repeatable)"
    )
    parser.add_argument("--postgres", action="store_true", help="also measure a throwaway PostgreSQL cluster")
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--commits", type=int, default=50)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lw-queue-"))
    targets: list[str | Path] = [tmp / "queue.db", *args.database_url]
    cluster = None
    if args.postgres:
        from tests.pgcluster import PgCluster, find_bindir

        bindir = find_bindir()
        if bindir is None:
            raise SystemExit("--postgres needs initdb and pg_ctl (Debian's postgresql)")
        cluster = PgCluster(bindir)
        targets.append(cluster.url(cluster.create("bench")))
    try:
        results = [run(t, args) for t in targets]
    finally:
        if cluster is not None:
            cluster.stop()
    load = os.getloadavg()[0]
    print(f"job queue, {args.workers} claiming threads; load average {load:.2f}")
    print(f"  {'engine':<11} {'claims/s':>9} {'once':>5} {'ms/item':>8} {'wake p50':>9} {'wake p95':>9}")
    for r in results:
        w = r["wake"] or {}
        print(
            f"  {r['dialect']:<11} {r['claims']['jobs_per_s']:>9} {str(r['claims']['once']):>5} "
            f"{r['steps']['ms_per_item']:>8} {w.get('p50_ms', '-'):>9} {w.get('p95_ms', '-'):>9}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"load_avg": load, "args": vars(args), "results": results}, indent=2))
    print(f"saved {RESULTS}")


if __name__ == "__main__":
    main()
