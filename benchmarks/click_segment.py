"""Benchmark: does a click mean the object under it? Click and box quality against exact masks.

    python benchmarks/click_segment.py [--models DIR] [--no-before]

1. Quality: on the ground-truth set of tests/tools/click_truth.py (real photos, exact masks), each
   object is prompted once with a click in its middle and once with its tight box; IoU with the true
   mask, wall and CPU seconds per prompt. Four segmenters: the lite segmenter before issue 16 (from
   git, see benchmarks/baseline.py) and today's, each with ISNet (medium) and with GrabCut.
2. Latency of the ``segment`` tool (what the server does for a click or a box on the canvas: load
   the image, segment, write the annotation) with today's lite stack, on the same objects.

Prints a table and writes benchmarks/results/click.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def quality(segmenter: Any, photos: dict[str, Any]) -> dict[str, Any]:
    """Per prompt kind: IoU with the truth, and seconds, over every object of every photo."""
    from tests.tools.click_truth import iou

    out: dict[str, Any] = {}
    for kind in ("box", "click"):
        ious, walls, cpus = [], [], []
        for name, (rgb, truths) in photos.items():
            for i, truth in enumerate(truths):
                segmenter.set_image(rgb, key=f"{name}-{kind}-{i}")  # a fresh key: no cached answer
                wall, cpu = time.perf_counter(), time.process_time()
                if kind == "box":
                    masks, _ = segmenter.segment(boxes=np.array([truth.box], np.float32))
                else:
                    masks, _ = segmenter.segment(points=np.array([truth.click], np.float32))
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
                ious.append(iou(masks[0], truth.mask))
        out[kind] = {
            "mean_iou": round(statistics.mean(ious), 4),
            "min_iou": round(min(ious), 4),
            "per_object": [round(v, 3) for v in ious],
            "median_s": round(statistics.median(walls), 3),
            "max_s": round(max(walls), 3),
            "median_cpu_s": round(statistics.median(cpus), 3),
        }
    return out


def tool_latency(models_dir: Path, photos: dict[str, Any], tmp: Path) -> dict[str, Any]:
    """Wall and CPU seconds of ``segment`` tool calls (load, segment, write) with the lite stack."""
    from ops.caller import local_caller
    from store.db import new_session, open_engine
    from store.ingest import ingest
    from tests.tools.click_truth import OPENCV_DATA
    from tools.backends.stacks import build_backends
    from tools.catalog import vision_tools
    from tools.registry import ToolContext

    src = tmp / "src"
    src.mkdir()
    for name in photos:
        shutil.copy(OPENCV_DATA / name, src / name)
    home = tmp / "home"
    engine = open_engine(home / "labelwright.db")
    with new_session(engine) as session:
        project_id = ingest(session, home=home, project_name="click", source=src).project_id
    backends = build_backends("lite", models_dir)
    ctx = ToolContext(
        engine=engine,
        project_id=project_id,
        home=home,
        models_dir=models_dir,
        caller=local_caller(),
        backends_factory=lambda: backends,
    )
    segment = vision_tools().get("segment")
    first = next(iter(photos.values()))[1][0]
    segment(ctx, {"image": next(iter(photos)), "label": "object", "box": list(first.box)})  # warm-up
    out: dict[str, Any] = {"segmenter": backends.segmenter.model_id}
    for kind in ("box", "click"):
        walls, cpus = [], []
        for name, (_, truths) in photos.items():
            for truth in truths:
                prompt = {"box": list(truth.box)} if kind == "box" else {"points": [list(truth.click)]}
                wall, cpu = time.perf_counter(), time.process_time()
                segment(ctx, {"image": name, "label": "object", **prompt})
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
        out[kind] = {
            "median_s": round(statistics.median(walls), 3),
            "max_s": round(max(walls), 3),
            "median_cpu_s": round(statistics.median(cpus), 3),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=Path, default=Path.home() / ".labelwright" / "models")
    parser.add_argument("--no-before", action="store_true", help="Skip the before-issue-16 segmenters.")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "click.json")
    args = parser.parse_args()

    from benchmarks.segmenter_before import before_segmenter
    from tests.tools.click_truth import PHOTOS, load_rgb, truths
    from tools.backends.stacks import build_backends

    loads = [os.getloadavg()[0]]
    photos = {}
    for name in PHOTOS:
        rgb = load_rgb(name)
        photos[name] = (rgb, truths(name, rgb))
    segmenters: dict[str, Any] = {
        "after isnet": lambda: build_backends("lite", args.models).segmenter,
        "after grabcut": lambda: build_backends("lite", args.models, segmenter="lite-grabcut").segmenter,
    }
    if not args.no_before:
        segmenters = {
            "before isnet": lambda: before_segmenter(args.models),
            "before grabcut": lambda: before_segmenter(args.models, grabcut=True),
            **segmenters,
        }
    results: dict[str, Any] = {}
    for label, make in segmenters.items():
        segmenter = make()
        rgb, first = next(iter(photos.values()))
        segmenter.set_image(rgb, key="warm-up")
        segmenter.segment(boxes=np.array([first[0].box], np.float32))  # session load is not a prompt
        results[label] = {"model_id": segmenter.model_id, **quality(segmenter, photos)}
        box, click = results[label]["box"]["mean_iou"], results[label]["click"]["mean_iou"]
        print(f"{label}: box IoU {box:.3f}, click IoU {click:.3f}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="lw-click-"))
    try:
        tool = tool_latency(args.models, photos, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    loads.append(os.getloadavg()[0])
    result = {
        "load_average_1min": [round(v, 2) for v in loads],
        "objects": {name: len(t) for name, (_, t) in photos.items()},
        "segmenters": results,
        "segment_tool": tool,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print_table(result)
    print(f"\nsaved {args.out}")


def print_table(r: dict[str, Any]) -> None:
    objects = ", ".join(f"{n} {c}" for n, c in r["objects"].items())
    print(f"\nground truth: {objects} objects; load average {r['load_average_1min']}")
    print(f"{'segmenter':<16}{'box IoU':>9}{'click IoU':>11}{'box s':>8}{'click s':>9}{'click CPU s':>13}")
    for label, q in r["segmenters"].items():
        print(
            f"{label:<16}{q['box']['mean_iou']:>9.3f}{q['click']['mean_iou']:>11.3f}"
            f"{q['box']['median_s']:>8.2f}{q['click']['median_s']:>9.2f}{q['click']['median_cpu_s']:>13.2f}"
        )
    t = r["segment_tool"]
    print(f"\nsegment tool ({t['segmenter']}), server time per call (median / max, CPU):")
    for kind in ("box", "click"):
        k = t[kind]
        times = f"{k['median_s']:.3f} s / {k['max_s']:.3f} s"
        print(f"  {kind:<6}{times}  (CPU {k['median_cpu_s']:.2f} s)  target <= 1 s")


if __name__ == "__main__":
    main()
