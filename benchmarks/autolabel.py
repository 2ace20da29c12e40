"""Benchmark: the auto-label pipeline on real photos, stage by stage, against the bare models.

    python benchmarks/autolabel.py [--stack lite|full] [--random-weights] [--models DIR] [--no-before]
    python benchmarks/autolabel.py --executor ray --replicas 1,2   (benchmarks/autolabel_ray.py)

0. Before/after (lite stack): the same pipeline pass first with the lite segmenter as it was before
   issue 16 (loaded from git, see benchmarks/baseline.py: ISNet at a fixed 1024 px per box), then
   with today's; per-image times (median), segment time split into ISNet and GrabCut calls, and the
   IoU of every new mask against the old 1024-px mask of the same box.

1. Pipeline: a real ``auto_label`` job (JobRunner.run_job: decode, detect, segment every box with
   one set_image, verify, DB write + cursor commit per image) over bus.jpg, zidane.jpg and
   skimage photos; per-stage times, images/s.
2. Overhead (target <= 15%): pipeline wall time over the time its own model calls took in that
   same run, minus 1 -- everything we add (decode, RLE and polygons, DB writes, cursor commits,
   events). Also a separate models-only pass (the same detector/segmenter/verifier calls with
   nothing around them, fresh backends so no result cache is shared); on a shared machine its
   ratio to the pipeline mostly measures load drift between the two passes, so it is reported
   beside, not instead.
3. Interactive ``segment`` tool latency (wall and CPU seconds of the tool call: load, segment,
   write): first box on an image, further boxes, and clicks in the middle of the same objects.
4. Peak RSS of the process after the pipeline pass (one stack loaded).

``--stack full --random-weights`` times the intended architectures (YOLO-World v2, SAM 2.1, CLIP)
with random weights; as those find nothing, :class:`FixedBoxes` hands four fixed boxes per image
to the later stages after the real detector call.

Prints a table and writes benchmarks/results/autolabel.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CLASSES = ["person", "bus", "tie", "car", "cat", "cup"]
SKIMAGE = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png")


def photo_dir(dest: Path) -> Path:
    import skimage.data
    import ultralytics

    dest.mkdir(parents=True)
    assets = Path(ultralytics.__file__).parent / "assets"
    for name in ("bus.jpg", "zidane.jpg"):
        shutil.copy(assets / name, dest / name)
    for name in SKIMAGE:
        shutil.copy(Path(skimage.data.__file__).parent / name, dest / name)
    return dest


class FixedBoxes:
    """Runs the real detector (so its time counts), then answers four fixed boxes per image.

    A randomly initialised detector finds nothing at any threshold, which would leave segment,
    verify and write untimed; with these boxes the real architectures behind them still run.
    """

    def __init__(self, detector: Any) -> None:
        self.inner = detector
        self.model_id = detector.model_id

    def detect(self, image: Any, prompts: list[str], threshold: float) -> Any:
        self.inner.detect(image, prompts, threshold)
        return self.boxes(image, prompts)

    @staticmethod
    def boxes(image: Any, prompts: list[str]) -> Any:
        """The four fixed boxes, scaled to ``image``."""
        import numpy as np

        from tools.backends.base import Detections

        h, w = image.shape[:2]
        rel = np.array(
            [[0.1, 0.1, 0.5, 0.6], [0.5, 0.2, 0.9, 0.9], [0.3, 0.4, 0.7, 0.95], [0.05, 0.5, 0.35, 0.9]]
        )
        return Detections(
            xyxy=rel * [w, h, w, h],
            confidence=np.array([0.9, 0.8, 0.7, 0.6]),
            label=[prompts[i % len(prompts)] for i in range(4)],
        )


def build(stack: str, models_dir: Path, random_weights: bool) -> Any:
    from types import SimpleNamespace

    from tools.backends.stacks import build_backends

    if not random_weights:
        return build_backends(stack, models_dir)
    full = build_backends(stack, models_dir, random_init=True)
    return SimpleNamespace(
        detector=FixedBoxes(full.detector), segmenter=full.segmenter, verifier=full.verifier
    )


def warm_up(backends: Any) -> None:
    """One call through each model on an image outside the set: first-call costs are not stages."""
    import numpy as np

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    backends.detector.detect(image, ["person"], 0.3)
    backends.segmenter.set_image(image, key="warm-up")
    backends.segmenter.segment(boxes=np.array([[100, 100, 300, 400]], np.float32))
    if backends.verifier is not None:
        backends.verifier.score([image[100:400, 100:300]], ["person", "bus"])


def run_pipeline(
    engine: Any, home: Path, project_id: int, image_ids: list[int], backends: Any
) -> dict[str, Any]:
    from server.jobs import JobRunner
    from tools.auto_label import KIND, LabelJob

    handler = LabelJob(home=home, backends_factory=lambda: backends)
    runner = JobRunner(engine, {KIND: handler}, lock_dir=home / "jobs")
    per_image: list[dict[str, Any]] = []

    def collect(event: Any) -> None:
        if event.state == "running" and event.done > 0 and handler.last is not None:
            per_image.append({"boxes": len(handler.last.proposals), **handler.last.timings})

    runner.subscribe(collect)
    job_id = runner.enqueue(project_id, KIND, {"classes": CLASSES, "image_ids": image_ids, "threshold": 0.3})
    started = time.perf_counter()
    job = runner.run_job(job_id)
    wall = time.perf_counter() - started
    assert job.state.value == "done", job.error
    return {"wall_s": wall, "per_image": per_image}


def run_models_only(home: Path, images: list[Any], backends: Any) -> dict[str, float]:
    """The pipeline's model calls with nothing around them: no DB, no masks to RLE, no job."""
    from tools.pipeline import crop, load_rgb

    spent = {"detect": 0.0, "segment": 0.0, "verify": 0.0, "boxes": 0}
    started = time.perf_counter()
    for image in images:
        rgb = load_rgb(home, image)
        t = time.perf_counter()
        dets = backends.detector.detect(rgb, CLASSES, 0.3)
        spent["detect"] += time.perf_counter() - t
        if len(dets) == 0:
            continue
        t = time.perf_counter()
        backends.segmenter.set_image(rgb, key=f"models-only-{image.id}")
        backends.segmenter.segment(boxes=dets.xyxy)
        spent["segment"] += time.perf_counter() - t
        if backends.verifier is not None:
            t = time.perf_counter()
            backends.verifier.score([crop(rgb, b) for b in dets.xyxy], sorted(set(dets.label)))
            spent["verify"] += time.perf_counter() - t
        spent["boxes"] += len(dets)
    spent["wall_s"] = time.perf_counter() - started  # includes decode: the pipeline decodes too
    spent["models_s"] = spent["detect"] + spent["segment"] + spent["verify"]
    return spent


def interactive_latency(ctx: Any, image: str, boxes: list[list[float]]) -> dict[str, float]:
    """Wall and CPU seconds of ``segment`` tool calls: boxes (the first one separately), then clicks
    in the boxes' centres; ``found_nothing`` counts prompts the tool answered with an error."""
    from tools.catalog import vision_tools
    from tools.registry import ToolError

    segment = vision_tools().get("segment")
    failures = 0

    def timed(args: dict[str, Any]) -> tuple[float, float]:
        nonlocal failures
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            segment(ctx, {"image": image, "label": "person", **args})
        except ToolError:  # "found no object there": a result too, and it took this long
            failures += 1
        return time.perf_counter() - wall, time.process_time() - cpu

    box_times = [timed({"box": box}) for box in boxes]
    clicks = [[(b[0] + b[2]) / 2, (b[1] + b[3]) / 2] for b in boxes]
    click_times = [timed({"points": [xy]}) for xy in clicks]
    return {
        "box_first_s": box_times[0][0],
        "box_first_cpu_s": box_times[0][1],
        "box_next_s": statistics.median(t[0] for t in box_times[1:]),
        "box_next_cpu_s": statistics.median(t[1] for t in box_times[1:]),
        "click_s": statistics.median(t[0] for t in click_times),
        "click_cpu_s": statistics.median(t[1] for t in click_times),
        "click_max_s": max(t[0] for t in click_times),
        "found_nothing": failures,
    }


def project(tmp: Path, name: str) -> tuple[Any, Path, int, list[Any]]:
    """A fresh store under ``tmp/name`` with the benchmark photos ingested: engine, home, project, images."""
    from sqlmodel import select

    from store.db import new_session, open_engine
    from store.ingest import ingest
    from store.models import Image

    home = tmp / name
    engine = open_engine(home / "labelwright.db")
    with new_session(engine) as session:
        ingest(session, home=home, project_name="bench", source=photo_dir(tmp / f"src-{name}"))
        images = list(session.exec(select(Image).order_by(Image.id)).all())
    return engine, home, images[0].project_id, images


def masks_by_image(engine: Any) -> dict[str, list[Any]]:
    """Each image's auto_label masks in write order (the detector's order), by file name."""
    from sqlmodel import select

    from store.db import new_session
    from store.masks import mask_from_rle
    from store.models import Annotation, Image

    out: dict[str, list[Any]] = {}
    with new_session(engine) as session:
        rows = session.exec(
            select(Image.file_name, Annotation.mask)
            .join(Image)
            .where(Annotation.tool == "auto_label")
            .order_by(Annotation.id)
        ).all()
        for name, rle in rows:
            out.setdefault(name, []).append(mask_from_rle(rle))
    return out


def mask_ious(before: dict[str, list[Any]], after: dict[str, list[Any]]) -> list[float]:
    """IoU of each new mask with the old mask of the same box (same detector, same order)."""
    if {k: len(v) for k, v in before.items()} != {k: len(v) for k, v in after.items()}:
        raise RuntimeError("before and after passes wrote different boxes: the detector is not the same")
    return [
        float((a & b).sum() / max((a | b).sum(), 1))
        for name in before
        for a, b in zip(before[name], after[name], strict=True)
    ]


def timed_pass(tmp: Path, name: str, backends: Any) -> dict[str, Any]:
    """One pipeline pass over a fresh store, with the segmenter's ISNet/GrabCut time split out."""
    from benchmarks.segmenter_before import StageClock

    engine, home, project_id, images = project(tmp, name)
    clock = StageClock(backends.segmenter) if hasattr(backends.segmenter, "_isnet") else None
    warm_up(backends)
    if clock is not None:
        clock.seconds = dict.fromkeys(clock.seconds, 0.0)
        clock.cpu_seconds = dict.fromkeys(clock.cpu_seconds, 0.0)
        clock.calls = dict.fromkeys(clock.calls, 0)
    cpu = time.process_time()
    pipeline = run_pipeline(engine, home, project_id, [i.id for i in images], backends)
    pipeline["cpu_s"] = time.process_time() - cpu
    per = pipeline["per_image"]
    stages = {k: sum(p[k] for p in per) for k in ("decode", "detect", "segment", "verify", "write")}
    image_s = [sum(p[k] for k in stages) for p in per]
    print(f"{name}: {pipeline['wall_s']:.2f} s for {len(images)} images", flush=True)
    return {
        "engine": engine,
        "home": home,
        "project_id": project_id,
        "images": images,
        "pipeline": pipeline,
        "stages": stages,
        "image_s": image_s,
        "segment_calls_s": None if clock is None else {k: round(v, 3) for k, v in clock.seconds.items()},
        "segment_calls_cpu_s": None
        if clock is None
        else {k: round(v, 3) for k, v in clock.cpu_seconds.items()},
        "segment_calls": None if clock is None else dict(clock.calls),
    }


def summary(run: dict[str, Any], segmenter: str) -> dict[str, Any]:
    boxes = sum(p["boxes"] for p in run["pipeline"]["per_image"])
    return {
        "segmenter": segmenter,
        "pipeline_wall_s": round(run["pipeline"]["wall_s"], 3),
        "pipeline_cpu_s": round(run["pipeline"]["cpu_s"], 3),
        "median_image_s": round(statistics.median(run["image_s"]), 3),
        "mean_image_s": round(statistics.mean(run["image_s"]), 3),
        "max_image_s": round(max(run["image_s"]), 3),
        "stages_s": {k: round(v, 3) for k, v in run["stages"].items()},
        "segment_per_box_s": round(run["stages"]["segment"] / max(boxes, 1), 3),
        "segment_calls_s": run["segment_calls_s"],
        "segment_calls_cpu_s": run["segment_calls_cpu_s"],
        "segment_calls": run["segment_calls"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stack", choices=["lite", "full"], default="lite")
    parser.add_argument(
        "--random-weights",
        action="store_true",
        help="Random weights (full stack); four fixed boxes per image.",
    )
    parser.add_argument("--models", type=Path, default=Path.home() / ".labelwright" / "models")
    parser.add_argument("--no-before", action="store_true", help="Skip the lite before-issue-16 pass.")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--executor",
        choices=["thread", "ray"],
        default="thread",
        help="ray: images/s of a job on N Ray model actors vs in-process (autolabel_ray.py)",
    )
    parser.add_argument("--replicas", default="1,2", help="ray: comma-separated replica counts")
    args = parser.parse_args()
    if args.executor == "ray":
        from benchmarks.autolabel_ray import run

        args.out = args.out or REPO / "benchmarks" / "results" / "autolabel_ray.json"
        return run(args)
    args.out = args.out or REPO / "benchmarks" / "results" / "autolabel.json"

    from benchmarks.segmenter_before import before_segmenter
    from tools.registry import ToolContext

    load_before = [os.getloadavg()[0]]
    tmp = Path(tempfile.mkdtemp(prefix="lw-bench-"))
    before: dict[str, Any] | None = None
    latency_before: dict[str, float] | None = None
    bus_boxes = [[50, 400, 245, 905], [222, 405, 345, 860], [668, 395, 810, 878]]
    if args.stack == "lite" and not args.random_weights and not args.no_before:
        old = build(args.stack, args.models, False)
        old.segmenter = before_segmenter(args.models)
        before = timed_pass(tmp, "before", old)
        ctx = ToolContext(
            engine=before["engine"],
            project_id=before["project_id"],
            home=before["home"],
            models_dir=args.models,
            actor="bench",
            backends_factory=lambda: old,
        )
        latency_before = interactive_latency(ctx, "bus.jpg", bus_boxes)
        del old
        gc.collect()

    t = time.perf_counter()
    backends = build(args.stack, args.models, args.random_weights)
    warm_up(backends)
    load_s = time.perf_counter() - t
    after = timed_pass(tmp, "after", backends)
    pipeline = after["pipeline"]
    images = after["images"]
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    segmenter_id = backends.segmenter.model_id
    del backends
    gc.collect()

    fresh = build(args.stack, args.models, args.random_weights)
    warm_up(fresh)
    models = run_models_only(after["home"], images, fresh)
    print(f"models only: {models['models_s']:.2f} s", flush=True)

    latency_backends = build(args.stack, args.models, args.random_weights)
    warm_up(latency_backends)
    ctx = ToolContext(
        engine=after["engine"],
        project_id=after["project_id"],
        home=after["home"],
        models_dir=args.models,
        actor="bench",
        backends_factory=lambda: latency_backends,
    )
    latency = interactive_latency(ctx, "bus.jpg", bus_boxes)
    models_ids = {
        "detector": latency_backends.detector.model_id,
        "segmenter": latency_backends.segmenter.model_id,
        "verifier": None if latency_backends.verifier is None else latency_backends.verifier.model_id,
    }
    load_before.append(os.getloadavg()[0])

    per = pipeline["per_image"]
    stages = after["stages"]
    boxes = sum(p["boxes"] for p in per)
    in_run = stages["detect"] + stages["segment"] + stages["verify"]
    result: dict[str, Any] = {
        "stack": args.stack + (" (random weights)" if args.random_weights else ""),
        "models": models_ids,
        "load_average_1min": [round(v, 2) for v in load_before],
        "images": len(images),
        "boxes": boxes,
        "load_and_warm_up_s": round(load_s, 2),
        "pipeline_wall_s": round(pipeline["wall_s"], 3),
        "images_per_s": round(len(images) / pipeline["wall_s"], 3),
        "median_image_s": round(statistics.median(after["image_s"]), 3),
        "stages_s": {k: round(v, 3) for k, v in stages.items()},
        "segment_per_box_s": round(stages["segment"] / max(boxes, 1), 3),
        "write_per_box_ms": round(1000 * stages["write"] / max(boxes, 1), 2),
        "model_calls_in_pipeline_s": round(in_run, 3),
        "overhead": round(pipeline["wall_s"] / in_run - 1, 4),
        "models_only_pass_s": round(models["models_s"], 3),
        "models_only_pass_boxes": models["boxes"],
        "pipeline_vs_models_only_pass": round(pipeline["wall_s"] / models["models_s"] - 1, 4),
        "interactive": {k: round(v, 3) for k, v in latency.items()},
        "peak_rss_mb": round(peak_rss_mb, 1),
        "per_image": [{k: round(v, 3) if isinstance(v, float) else v for k, v in p.items()} for p in per],
    }
    if before is not None and latency_before is not None:
        ious = mask_ious(masks_by_image(before["engine"]), masks_by_image(after["engine"]))
        result["before_after"] = {
            "before": {
                **summary(before, "ISNet medium, fixed 1024 px (code at benchmarks/baseline.BASE)"),
                "interactive": {k: round(v, 3) for k, v in latency_before.items()},
            },
            "after": {**summary(after, segmenter_id), "interactive": result["interactive"]},
            "mask_iou_vs_before": {
                "mean": round(statistics.mean(ious), 4),
                "min": round(min(ious), 4),
                "per_box": [round(v, 3) for v in ious],
            },
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print_table(result)
    print(f"\nsaved {args.out}")
    shutil.rmtree(tmp, ignore_errors=True)


def print_table(r: dict[str, Any]) -> None:
    i = r["interactive"]
    rows = [
        ("stack", r["stack"]),
        ("models", " + ".join(str(v) for v in r["models"].values())),
        ("load average (1 min, start / end)", " / ".join(str(v) for v in r["load_average_1min"])),
        ("images / boxes", f"{r['images']} / {r['boxes']}"),
        ("pipeline wall", f"{r['pipeline_wall_s']:.2f} s  ({r['images_per_s']:.3f} images/s)"),
        ("median per image", f"{r['median_image_s']:.2f} s  (target <= 3 s)"),
        *((f"  {k}", f"{v:.3f} s") for k, v in r["stages_s"].items()),
        ("segment per box", f"{r['segment_per_box_s']:.3f} s"),
        ("DB write per box", f"{r['write_per_box_ms']:.2f} ms"),
        ("model calls inside the pipeline", f"{r['model_calls_in_pipeline_s']:.2f} s"),
        ("overhead (wall / model calls - 1)", f"{100 * r['overhead']:.1f} %  (target <= 15 %)"),
        (
            "separate models-only pass",
            f"{r['models_only_pass_s']:.2f} s  (pipeline {100 * r['pipeline_vs_models_only_pass']:+.1f} %)",
        ),
        ("segment tool: first box", f"{i['box_first_s']:.3f} s  (CPU {i['box_first_cpu_s']:.2f} s)"),
        ("segment tool: next boxes (median)", f"{i['box_next_s']:.3f} s  (CPU {i['box_next_cpu_s']:.2f} s)"),
        ("segment tool: clicks (median)", f"{i['click_s']:.3f} s  (CPU {i['click_cpu_s']:.2f} s)"),
        ("load + warm-up", f"{r['load_and_warm_up_s']:.2f} s"),
        ("peak RSS", f"{r['peak_rss_mb']:.0f} MB"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    if "before_after" in r:
        ba = r["before_after"]
        print("\nbefore -> after (same run)")
        b, a = ba["before"], ba["after"]
        for key, fmt in (
            ("pipeline_wall_s", "{:.2f} s"),
            ("pipeline_cpu_s", "{:.2f} s"),
            ("median_image_s", "{:.2f} s"),
            ("mean_image_s", "{:.2f} s"),
            ("max_image_s", "{:.2f} s"),
            ("segment_per_box_s", "{:.3f} s"),
        ):
            print(f"  {key:<28}{fmt.format(b[key]):>12} -> {fmt.format(a[key])}")
        for stage in b["stages_s"]:
            print(f"  {'stage ' + stage:<28}{b['stages_s'][stage]:>10.3f} s -> {a['stages_s'][stage]:.3f} s")
        for part in ("isnet", "grabcut"):
            calls = (
                f"({b['segment_calls'][part]} -> {a['segment_calls'][part]} calls; CPU "
                f"{b['segment_calls_cpu_s'][part]:.1f} -> {a['segment_calls_cpu_s'][part]:.1f} s)"
            )
            print(
                f"  {'segment: ' + part:<28}{b['segment_calls_s'][part]:>10.3f} s -> "
                f"{a['segment_calls_s'][part]:.3f} s  {calls}"
            )
        for key in ("box_first_s", "box_next_s", "click_s"):
            old, new = b["interactive"][key], a["interactive"][key]
            print(f"  {'segment tool ' + key:<28}{old:>10.3f} s -> {new:.3f} s")
        iou = ba["mask_iou_vs_before"]
        print(
            f"  mask IoU vs 1024-px masks: mean {iou['mean']:.3f}, min {iou['min']:.3f} (target mean >= 0.9)"
        )


if __name__ == "__main__":
    main()
