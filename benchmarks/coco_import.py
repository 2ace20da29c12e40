"""Benchmark: import a COCO file of many polygon annotations (default 100,000 over 10,000 images).

    python benchmarks/coco_import.py [--images N] [--per-image K] [--size WxH] [--with-ingest]
        [--baseline-ref REF | --no-baseline] [--baseline-images N]

Generates, in a temporary directory, a COCO file with ``K`` random star-shaped polygons per image
(8-24 vertices, 10-120 px across, clipped to the image), plus 1% bad entries of the kinds the
importer must report (unknown category, degenerate box, polygon of 2 points). By default the
images are already in the project (rows registered directly, as after an earlier ingest: the
annotations come from another tool) and the import matches them by name, which is what the
issue's 132 s measured; with ``--with-ingest`` tiny flat-colour PNG files are written and the
import ingests them too (that part is :mod:`store.ingest`'s cost, reported on its own). Then runs
``store.coco_import.import_coco`` into a fresh store and reports wall time (ingest and
annotations), annotations/s, what was imported and reported, and the load average. Unless
``--no-baseline``, the same script first runs on the code of ``--baseline-ref`` (default: this
branch's merge base with main) on ``--baseline-images`` images (the old importer is slow; its time
is scaled up to the full count and marked so). Saves
benchmarks/results/coco_import.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _polygon(rng: np.random.Generator, width: int, height: int) -> list[float]:
    n = int(rng.integers(8, 25))
    cx, cy = rng.uniform(0, width), rng.uniform(0, height)
    radius = rng.uniform(5, 60) * rng.uniform(0.5, 1.0, n)
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    xs = np.clip(cx + radius * np.cos(angles), 0, width)
    ys = np.clip(cy + radius * np.sin(angles), 0, height)
    return np.round(np.stack([xs, ys], 1).ravel(), 2).tolist()


def write_dataset(
    root: Path, images: int, per_image: int, size: tuple[int, int], files: bool, seed: int = 0
) -> Path:
    """``root/coco.json`` (and with ``files`` PNGs under ``root/images``); returns the COCO file's path."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    width, height = size
    (root / "images").mkdir(parents=True)
    coco: dict[str, Any] = {"images": [], "annotations": [], "categories": []}
    coco["categories"] = [{"id": i, "name": f"class{i}"} for i in range(1, 11)]
    ann_id = 0
    for i in range(1, images + 1):
        name = f"img{i:06d}.png"
        if files:
            color = (i % 256, i // 256 % 256, i // 65536)  # a distinct file each: no dedupe
            Image.new("RGB", (width, height), color).save(root / "images" / name, compress_level=1)
        coco["images"].append({"id": i, "file_name": name, "width": width, "height": height})
        for _ in range(per_image):
            ann_id += 1
            poly = _polygon(rng, width, height)
            xs, ys = poly[0::2], poly[1::2]
            bbox = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
            entry = {"id": ann_id, "image_id": i, "category_id": int(rng.integers(1, 11)), "bbox": bbox,
                     "segmentation": [poly], "area": 0.0, "iscrowd": 0}  # fmt: skip
            if ann_id % 100 == 0:  # the bad kinds, 1%
                kind = (ann_id // 100) % 3
                if kind == 0:
                    entry["category_id"] = 99
                elif kind == 1:
                    entry["bbox"] = [bbox[0], bbox[1], 0, bbox[3]]
                else:
                    entry["segmentation"] = [poly[:4]]
            coco["annotations"].append(entry)
    path = root / "coco.json"
    path.write_text(json.dumps(coco))
    return path


def _register_images(session: Any, project_id: int, images: int, size: tuple[int, int]) -> None:
    """Image rows as an earlier ingest leaves them (no files: a name-matched import never reads them)."""
    from sqlalchemy import insert

    from store.models import Image, utcnow

    now = utcnow()
    rows = [
        {"project_id": project_id, "file_name": f"img{i:06d}.png", "path": f"images/{i}.png",
         "sha256": f"{i:064x}", "width": size[0], "height": size[1], "created_at": now}
        for i in range(1, images + 1)
    ]  # fmt: skip
    session.execute(insert(Image.__table__), rows)
    session.commit()


def measure(images: int, per_image: int, size: tuple[int, int], with_ingest: bool) -> dict[str, Any]:
    import store.coco_import as coco_import
    from store.db import new_session, open_engine
    from store.models import Project

    with tempfile.TemporaryDirectory(prefix="lw-coco-bench-") as tmp:
        start = time.perf_counter()
        coco_path = write_dataset(Path(tmp) / "src", images, per_image, size, files=with_ingest)
        generate_s = time.perf_counter() - start
        home = Path(tmp) / "home"
        engine = open_engine(home / "store.db")
        with new_session(engine) as session:
            project = Project(name="bench")
            session.add(project)
            session.commit()
            if not with_ingest:
                _register_images(session, project.id, images, size)  # type: ignore[arg-type]
            timings: dict[str, float] = {}
            ingest = coco_import._Images.ingest

            def timed_ingest(self: Any, *args: Any, **kwargs: Any) -> int:
                began = time.perf_counter()
                try:
                    return ingest(self, *args, **kwargs)
                finally:
                    timings["ingest_s"] = time.perf_counter() - began

            coco_import._Images.ingest = timed_ingest  # type: ignore[method-assign]
            began, cpu_began = time.perf_counter(), time.process_time()
            report = coco_import.import_coco(
                session,
                home=home,
                project_id=project.id,
                coco_path=coco_path,
                images_dir=Path(tmp) / "src" / "images",
            )
            total_s, cpu_s = time.perf_counter() - began, time.process_time() - cpu_began
            coco_import._Images.ingest = ingest  # type: ignore[method-assign]
        engine.dispose()
    annotations_s = total_s - timings.get("ingest_s", 0.0)
    return {
        "with_ingest": with_ingest,
        "images": images,
        "annotations_in_file": images * per_image,
        "image_size": list(size),
        "generate_s": round(generate_s, 2),
        "total_s": round(total_s, 2),
        # CPU seconds of the import (SQLite works in-process): what a shared machine's load barely moves
        "cpu_s": round(cpu_s, 2),
        "ingest_s": round(timings.get("ingest_s", 0.0), 2),
        "annotations_s": round(annotations_s, 2),
        "annotations_per_s": round(report.imported / annotations_s) if annotations_s else None,
        "imported": report.imported,
        "problems": len(report.problems),
        "images_ingested": report.images_ingested,
        "images_matched": report.images_matched,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--per-image", type=int, default=10)
    parser.add_argument("--size", default="640x480", help="image size WxH")
    parser.add_argument(
        "--with-ingest", action="store_true", help="write image files; the import ingests them"
    )
    parser.add_argument("--baseline-ref", default=None, help="commit to compare with (default: merge base)")
    parser.add_argument("--baseline-images", type=int, default=1_000, help="images for the (slow) baseline")
    parser.add_argument("--no-baseline", action="store_true", help="measure this tree only")
    args = parser.parse_args()
    if not 1 <= args.images <= 50_000 or not 1 <= args.per_image <= 100:
        raise SystemExit(
            f"--images must be 1..50000 and --per-image 1..100, got {args.images}, {args.per_image}"
        )
    size = tuple(int(v) for v in args.size.lower().split("x"))
    before = None
    if not args.no_baseline:
        from benchmarks.baseline import default_ref, run_baseline

        ref = args.baseline_ref or default_ref()
        n = min(args.baseline_images, args.images)
        print(f"--- baseline: the same benchmark on {ref[:12]}, {n} images ---", flush=True)
        cli = ["--images", str(n), "--per-image", str(args.per_image), "--size", args.size]
        cli += ["--with-ingest"] if args.with_ingest else []
        before = run_baseline(Path(__file__), cli, "coco_import.json", ref, 1800)
        before["ref"] = ref
        before["scale"] = args.images / n
    result = measure(args.images, args.per_image, size, args.with_ingest)  # type: ignore[arg-type]
    result["load_average"] = os.getloadavg()
    rows = [("this tree", result, 1.0)] + ([("baseline", before, before["scale"])] if before else [])
    print(f"\n{'code':<12}{'images':>8}{'annots':>9}{'ingest s':>10}{'annots s':>10}{'total s':>9}"
          f"{'x scale':>9}{'total s at full size':>22}")  # fmt: skip
    for label, r, scale in rows:
        print(f"{label:<12}{r['images']:>8}{r['imported']:>9}{r['ingest_s']:>10}{r['annotations_s']:>10}"
              f"{r['total_s']:>9}{scale:>9.1f}{r['total_s'] * scale:>22.1f}")  # fmt: skip
    print(f"this tree: {result['annotations_per_s']} annotations/s, {result['problems']} problems reported, "
          f"{result['cpu_s']} CPU-s")  # fmt: skip
    print(f"load average (1, 5, 15 min): {', '.join(f'{v:.2f}' for v in result['load_average'])}")
    if before is not None:
        result["before"] = before
    out = REPO / "benchmarks" / "results" / "coco_import.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"saved {out}")


if __name__ == "__main__":
    main()
