"""Store at scale: 100k images, 1M annotations; how fast do the UI's queries and the export run?

Builds a synthetic project with bulk inserts (images: SQLAlchemy core executemany; annotations:
the product's bulk path ``store.bulk_annotations.insert_annotations``, an executemany on SQLite and
COPY on PostgreSQL, 50k rows a statement, in one transaction),
then times, over many runs each: a page of images filtered by a random class at a random page,
a page by status, per-class counts, the "no annotations yet" image list, and the COCO export of the
whole project.

Every annotation gets a random 8-vertex polygon as its segmentation, the COCO RLE of that polygon
as its mask (pycocotools rasterises it, ~7 us each), and bbox/area taken from that mask, so the
rows look like what ``create_annotation`` writes (fidelity 1.0: the polygon re-rasterises to the
mask exactly). ``mask_geometry`` is not called per row (too slow for 1M); events are not written
(a bulk import, not user edits).

    .venv/bin/python benchmarks/store_scale.py                  # 100k images, 1M annotations
    .venv/bin/python benchmarks/store_scale.py --images 2000 --annotations 20000 --runs 20
    .venv/bin/python benchmarks/store_scale.py --database-url postgresql+psycopg://u@host/db
    .venv/bin/python benchmarks/store_scale.py --throwaway-postgres   # tests/pgcluster.py, fsync off

The summary triggers fire as in production (per row on SQLite, per statement on PostgreSQL).
``insert_annotations_s`` times the inserts alone, ``generate_annotations_s`` the synthetic rows.
On PostgreSQL the load ends with ``VACUUM (ANALYZE)`` (timed): the planner needs the statistics,
and the index-only scans of the list queries need the visibility map that only VACUUM sets
(autovacuum would, a minute or so after a real import; the benchmark measures at once).

Targets: list/filter/counts p95 <= 200 ms; export of 1M annotations <= 60 s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store.bulk_annotations import insert_annotations  # noqa: E402
from store.categories import ensure_categories  # noqa: E402
from store.db import new_session, open_engine  # noqa: E402
from store.images import class_counts, class_status_counts, list_images  # noqa: E402
from store.models import Image, utcnow  # noqa: E402
from store.projects import create_project  # noqa: E402

RESULTS = Path(__file__).with_name("results") / "store_scale.json"
CLASSES = [
    "person",
    "car",
    "bicycle",
    "motorcycle",
    "bus",
    "truck",
    "traffic light",
    "stop sign",
    "dog",
    "cat",
    "bird",
    "bench",
    "backpack",
    "umbrella",
    "handbag",
]
SIZES = [(640, 480), (1280, 720), (1920, 1080)]
STATUSES = (["proposed"] * 6) + (["accepted"] * 3) + ["rejected"]
CHUNK = 50_000
UNANNOTATED = 0.1  # share of images left without annotations (the "to do" list is not empty)
TARGET_QUERY_P95_MS = 200.0
TARGET_EXPORT_S = 60.0


def build(engine: Any, *, n_images: int, n_annotations: int, seed: int) -> tuple[int, dict[str, float]]:
    """Insert the synthetic project; returns its id and the seconds each phase took."""
    rng = np.random.default_rng(seed)
    with new_session(engine) as session:
        project = create_project(session, name=f"scale-{n_images}-{n_annotations}")
        cats = ensure_categories(session, project_id=project.id, names=CLASSES)
        cat_ids = np.array([c.id for c in cats])
        session.commit()  # repository calls only flush; PostgreSQL checks the foreign keys below
    weights = 1.0 / np.arange(1, len(cats) + 1)  # Zipf-like: a few classes dominate, as in real data
    weights /= weights.sum()
    now = utcnow()
    timings: dict[str, float] = {}

    start = time.perf_counter()
    sizes = rng.integers(0, len(SIZES), n_images)
    with engine.begin() as conn:
        for lo in range(0, n_images, CHUNK):
            rows = [
                {
                    "project_id": project.id,
                    "file_name": f"img_{i:07d}.jpg",
                    "path": f"images/img_{i:07d}.jpg",
                    "sha256": hashlib.sha256(str(i).encode()).hexdigest(),
                    "width": SIZES[sizes[i]][0],
                    "height": SIZES[sizes[i]][1],
                    "created_at": now,
                }
                for i in range(lo, min(lo + CHUNK, n_images))
            ]
            conn.execute(Image.__table__.insert(), rows)  # type: ignore[attr-defined]
        first_image = conn.execute(
            text("SELECT min(id) FROM image WHERE project_id = :p"), {"p": project.id}
        ).scalar()
    timings["insert_images_s"] = time.perf_counter() - start

    annotated = int(n_images * (1 - UNANNOTATED))
    image_idx = np.sort(rng.integers(0, annotated, n_annotations))
    generating = inserting = 0.0
    with engine.begin() as conn:
        for lo in range(0, n_annotations, CHUNK):
            idx = image_idx[lo : lo + CHUNK]
            start = time.perf_counter()
            rows = _annotation_rows(rng, idx, sizes, first_image, project.id, cat_ids, weights, now)
            generating += time.perf_counter() - start
            start = time.perf_counter()
            insert_annotations(conn, rows)  # the product's bulk path (COCO import, jobs)
            inserting += time.perf_counter() - start
    timings["generate_annotations_s"] = generating
    timings["insert_annotations_s"] = inserting
    timings["insert_annotations_rows_per_s"] = n_annotations / inserting if inserting else 0.0
    if engine.dialect.name == "postgresql":
        start = time.perf_counter()
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM (ANALYZE)")
        timings["vacuum_analyze_s"] = time.perf_counter() - start
    return project.id, timings


def _annotation_rows(
    rng: np.random.Generator,
    idx: np.ndarray,
    sizes: np.ndarray,
    first_image: int,
    project_id: int,
    cat_ids: np.ndarray,
    weights: np.ndarray,
    now: Any,
) -> list[dict[str, Any]]:
    n = len(idx)
    wh = np.array(SIZES)[sizes[idx]]
    radius = rng.uniform(4, 60, n)
    cx = rng.uniform(radius, wh[:, 0] - radius)
    cy = rng.uniform(radius, wh[:, 1] - radius)
    angles = np.sort(rng.uniform(0, 2 * np.pi, (n, 8)), axis=1)
    reach = radius[:, None] * rng.uniform(0.6, 1.0, (n, 8))
    xs = np.clip(cx[:, None] + reach * np.cos(angles), 0, wh[:, :1])
    ys = np.clip(cy[:, None] + reach * np.sin(angles), 0, wh[:, 1:])
    polys = np.round(np.stack([xs, ys], axis=2).reshape(n, 16), 2)
    categories = rng.choice(cat_ids, n, p=weights)
    statuses = rng.choice(STATUSES, n)
    scores = np.round(rng.uniform(0.05, 1.0, n), 4)
    rows = []
    for k in range(n):
        w, h = int(wh[k, 0]), int(wh[k, 1])
        polygon = polys[k].tolist()
        rle = mask_utils.merge(mask_utils.frPyObjects([polygon], h, w))
        x, y, bw, bh = (float(v) for v in mask_utils.toBbox(rle))
        rows.append(
            {
                "project_id": project_id,
                "image_id": first_image + int(idx[k]),
                "category_id": int(categories[k]),
                "bbox": [x, y, bw, bh],
                "mask": {"size": [h, w], "counts": rle["counts"].decode("ascii")},
                "segmentation": [polygon],
                "fidelity": 1.0,
                "area": float(mask_utils.area(rle)),
                "score": float(scores[k]),
                "status": str(statuses[k]),
                "tool": "auto_label",
                "model": "synthetic",
                "prompt": "",
                "author": "benchmark",
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
    return rows


def timed(runs: int, call: Callable[[], Any]) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {
        "runs": runs,
        "p50_ms": statistics.median(samples),
        "p95_ms": samples[min(runs - 1, int(round(0.95 * (runs - 1))))],
        "max_ms": samples[-1],
    }


def measure(engine: Any, project_id: int, *, runs: int, seed: int) -> dict[str, dict[str, float]]:
    rand = random.Random(seed)
    results: dict[str, dict[str, float]] = {}
    with new_session(engine) as session:
        cat_ids = [c.id for c in ensure_categories(session, project_id=project_id, names=CLASSES)]
        totals = {c: list_images(session, project_id=project_id, category_id=c, limit=1)[1] for c in cat_ids}
        _, todo = list_images(session, project_id=project_id, without_annotations=True, limit=1)
        by_state = {
            s: list_images(session, project_id=project_id, status=s, limit=1)[1] for s in set(STATUSES)
        }

        def page(total: int) -> int:
            return rand.randrange(0, max(1, total // 50)) * 50

        def by_class() -> None:
            c = rand.choice(cat_ids)
            rows, _ = list_images(session, project_id=project_id, category_id=c, offset=page(totals[c]))
            session.expunge_all()

        def by_class_status() -> None:
            c = rand.choice(cat_ids)
            status = rand.choice(["proposed", "accepted", "rejected"])
            list_images(
                session, project_id=project_id, category_id=c, status=status, offset=page(totals[c] // 3)
            )
            session.expunge_all()

        def by_status() -> None:
            status = rand.choice(["proposed", "accepted", "rejected"])
            list_images(session, project_id=project_id, status=status, offset=page(by_state[status]))
            session.expunge_all()

        def without() -> None:
            list_images(session, project_id=project_id, without_annotations=True, offset=page(todo))
            session.expunge_all()

        results["list_images_by_class"] = timed(runs, by_class)
        results["list_images_by_class_and_status"] = timed(runs, by_class_status)
        results["list_images_by_status"] = timed(runs, by_status)
        results["list_images_without_annotations"] = timed(runs, without)
        results["class_counts"] = timed(runs, lambda: class_counts(session, project_id=project_id))
        results["class_status_counts"] = timed(
            runs, lambda: class_status_counts(session, project_id=project_id)
        )
    return results


def export(engine: Any, project_id: int, out_dir: Path) -> dict[str, Any] | None:
    try:
        from store.coco_export import export_coco
    except ImportError:
        return None
    out = out_dir / "coco.json"
    with new_session(engine) as session:
        start = time.perf_counter()
        report = export_coco(session, project_id=project_id, out_path=out, status=["proposed", "accepted"])
        seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "annotations": report.annotations,
        "images": report.images,
        "bytes": out.stat().st_size,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--annotations", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=None, help="database file (default: a temp dir)")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per query (>= 50 for the report)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-export", action="store_true")
    parser.add_argument("--database-url", default=None, help="a PostgreSQL URL (an empty database)")
    parser.add_argument(
        "--throwaway-postgres", action="store_true", help="start a private cluster (tests/pgcluster.py)"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    cluster = None
    if args.throwaway_postgres:
        from tests.pgcluster import PgCluster, find_bindir

        bindir = find_bindir()
        if bindir is None:
            raise SystemExit("--throwaway-postgres needs PostgreSQL's initdb and pg_ctl (Debian: postgresql)")
        cluster = PgCluster(bindir)
        args.database_url = cluster.url(cluster.create("scale"))
    try:
        with tempfile.TemporaryDirectory(prefix="lw-scale-") as tmp:
            db: Any = args.database_url or args.db or Path(tmp) / "scale.db"
            if isinstance(db, Path) and db.exists():
                raise SystemExit(f"{db} exists; pass a new path (the benchmark builds its own project)")
            engine = open_engine(db)
            project_id, build_times = build(
                engine, n_images=args.images, n_annotations=args.annotations, seed=args.seed
            )
            queries = measure(engine, project_id, runs=args.runs, seed=args.seed)
            exported = None if args.no_export else export(engine, project_id, Path(tmp))
            db_bytes = database_bytes(engine, db)
            dialect = engine.dialect.name
            engine.dispose()
    finally:
        if cluster is not None:
            cluster.stop()

    print(
        f"\nstore_scale on {dialect}: {args.images:,} images, {args.annotations:,} annotations, "
        f"db {db_bytes / 2**20:.0f} MiB"
    )
    for name, value in build_times.items():
        print(f"  {name:<34} {value:8.1f} {'rows/s' if name.endswith('_per_s') else 's'}")
    print(
        f"  {'query':<34} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  target p95 <= {TARGET_QUERY_P95_MS:.0f}"
    )
    for name, row in queries.items():
        ok = "ok" if row["p95_ms"] <= TARGET_QUERY_P95_MS else "MISSED"
        print(f"  {name:<34} {row['p50_ms']:8.1f} {row['p95_ms']:8.1f} {row['max_ms']:8.1f}  {ok}")
    if exported is None:
        print("  export: skipped (--no-export)" if args.no_export else "  export: not available")
    else:
        ok = "ok" if exported["seconds"] <= TARGET_EXPORT_S else "MISSED"
        print(
            f"  {'export_coco':<34} {exported['seconds']:8.1f} s  ({exported['annotations']:,} annotations, "
            f"{exported['bytes'] / 2**20:.0f} MiB)  target <= {TARGET_EXPORT_S:.0f} s  {ok}"
        )
    out = args.out or (RESULTS if dialect == "sqlite" else RESULTS.with_name(f"store_scale_{dialect}.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "engine": dialect,
                "images": args.images,
                "annotations": args.annotations,
                "db_bytes": db_bytes,
                "build": build_times,
                "queries": queries,
                "export": exported,
                "targets": {"query_p95_ms": TARGET_QUERY_P95_MS, "export_s": TARGET_EXPORT_S},
            },
            indent=2,
        )
    )
    print(f"saved {out}")
    return 0


def database_bytes(engine: Any, db: Any) -> int:
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar() or 0)
    return Path(db).stat().st_size


if __name__ == "__main__":
    raise SystemExit(main())
