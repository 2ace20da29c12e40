"""Benchmark: an ``auto_label`` job on Ray actors against the in-process executor, same images.

    python benchmarks/autolabel.py --executor ray --replicas 1,2 [--stack lite] [--models DIR]

One store (SQLite) with the benchmark photos; first a job with the in-process handler (the
stack loaded first, cold like the actors'), then, per replica count N, a local Ray (``--ray-address local``)
with N model actors: the time to build the actors' stacks, then a job over the same images.
Reported per run: images/s, the ratio to the in-process run, the 1-min load average, and
whether the annotations equal the in-process run's (class, box, mask, score, model).

On a 2-core machine the figure shows the mechanism and its overhead, not a speedup: N actors
share the same two cores. Prints a table and writes benchmarks/results/autolabel_ray.json.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

# Run as a script, benchmarks/ is first on sys.path and its click.py would shadow the click
# package that Ray (and typer) import; only the repository root stays.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if Path(getattr(sys.modules.get("click"), "__file__", "") or "/").resolve().parent == _HERE:
    del sys.modules["click"]

CLASSES = ["person", "bus", "tie", "car", "cat", "cup"]


def annotations(engine: Any, job_id: int) -> Counter:
    from sqlmodel import select

    from store.db import new_session
    from store.models import Annotation

    with new_session(engine) as session:
        rows = session.exec(select(Annotation).where(Annotation.job_id == job_id)).all()
    return Counter(
        (
            a.image_id,
            a.category_id,
            tuple(round(v, 2) for v in a.bbox),
            str(a.mask["counts"]),
            a.score,
            a.model,
        )
        for a in rows
    )


def differences(a: Counter, b: Counter) -> dict[str, Any]:
    """How two runs' annotations differ: unmatched ones, and for those matched by (image, class,
    box to 1 px), how many masks differ and the largest score difference."""

    def key(row: tuple) -> tuple:
        return row[0], row[1], tuple(round(v) for v in row[2])

    left, right = {key(r): r for r in a}, {key(r): r for r in b}
    both = left.keys() & right.keys()
    return {
        "unmatched": len(left.keys() ^ right.keys()),
        "masks_differ": sum(left[k][3] != right[k][3] for k in both),
        "max_score_diff": max((abs(left[k][4] - right[k][4]) for k in both), default=0.0),
    }


def one_job(engine: Any, project_id: int, image_ids: list[int], handler: Any) -> tuple[int, float]:
    from server.jobs import JobRunner
    from tools.auto_label import KIND

    runner = JobRunner(engine, {KIND: handler})
    params = {"classes": CLASSES, "image_ids": image_ids, "threshold": 0.3}
    job_id = runner.enqueue(project_id, KIND, params)
    started = time.perf_counter()
    job = runner.run_job(job_id)
    wall = time.perf_counter() - started
    assert job.state.value == "done", job.error
    return job_id, wall


def run(args: Any) -> None:
    import ray

    from benchmarks.autolabel import project
    from server.cli_label import backends_factory
    from server.ray_cluster import connect
    from tools.auto_label import LabelJob
    from tools.ray_label import RayLabelJob, RayOptions

    replicas = [int(n) for n in str(args.replicas).split(",") if n.strip()]
    tmp = Path(tempfile.mkdtemp(prefix="lw-bench-ray-"))
    engine, home, project_id, images = project(tmp, "ray")
    ids = [i.id for i in images]
    factory = backends_factory(args.stack, args.models)
    rows: list[dict[str, Any]] = []

    load = os.getloadavg()[0]
    # no warm-up on either side: the lite stack's output depends on its earlier calls in the
    # process (a warm-up on a random image changed an annotation), and the actors start cold too
    local = LabelJob(home=home, backends_factory=factory)
    job_id, wall = one_job(engine, project_id, ids, local)
    expected = annotations(engine, job_id)
    base = len(ids) / wall
    rows.append({"executor": "thread", "replicas": 1, "build_s": None, "wall_s": round(wall, 2),
                 "images_per_s": round(base, 3), "ratio": 1.0, "same_annotations": True,
                 "load_1min": [round(load, 2), round(os.getloadavg()[0], 2)]})  # fmt: skip
    print(f"thread: {wall:.2f} s for {len(ids)} images", flush=True)
    del local

    connect("local", num_cpus=max(max(replicas), os.cpu_count() or 1))
    try:
        for n in replicas:
            load = os.getloadavg()[0]
            handler = RayLabelJob(
                home=home, backends_factory=factory, options=RayOptions(replicas=n, batch=2)
            )
            t = time.perf_counter()
            handler.pool  # noqa: B018 - builds the N stacks now, so the job's time is labeling only
            build_s = time.perf_counter() - t
            try:
                job_id, wall = one_job(engine, project_id, ids, handler)
            finally:
                handler.close()
            rate = len(ids) / wall
            rows.append({"executor": "ray", "replicas": n, "build_s": round(build_s, 2),
                         "wall_s": round(wall, 2),
                         "images_per_s": round(rate, 3), "ratio": round(rate / base, 3),
                         "same_annotations": annotations(engine, job_id) == expected,
                         "differences": differences(expected, annotations(engine, job_id)),
                         "load_1min": [round(load, 2), round(os.getloadavg()[0], 2)]})  # fmt: skip
            print(f"ray x{n}: {wall:.2f} s (stacks built in {build_s:.1f} s)", flush=True)
    finally:
        ray.shutdown()
    result = {"stack": args.stack, "images": len(ids), "annotations": sum(expected.values()),
              "cpus": os.cpu_count(), "runs": rows}  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\n{result['images']} images, {result['annotations']} annotations, stack {args.stack}, "
          f"{result['cpus']} CPUs")  # fmt: skip
    print(f"{'executor':<10}{'replicas':>9}{'build s':>9}{'wall s':>8}{'images/s':>10}{'ratio':>7}"
          f"{'same':>6}  load 1 min (start/end)")  # fmt: skip
    for r in rows:
        build = "-" if r["build_s"] is None else f"{r['build_s']:.1f}"
        print(f"{r['executor']:<10}{r['replicas']:>9}{build:>9}{r['wall_s']:>8.2f}{r['images_per_s']:>10.3f}"
              f"{r['ratio']:>7.2f}{'yes' if r['same_annotations'] else 'NO':>6}  "
              f"{r['load_1min'][0]} / {r['load_1min'][1]}  {r.get('differences', '')}")  # fmt: skip
    print(f"\nsaved {out}")
    shutil.rmtree(tmp, ignore_errors=True)
