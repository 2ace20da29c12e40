"""Benchmark: the full stack's label job image by image vs overlapped and batched (issue 16's GPU path).

    python benchmarks/gpu_pipeline.py [--images 8] [--batches 4,8] [--device auto] [--models DIR]

One SQLite store, ``--images`` distinct photos (bus.jpg, zidane.jpg and skimage photos, each copy
with one pixel changed so ingest keeps it), and the same label job run by:

- ``plain``: :class:`tools.auto_label.LabelJob`, one image at a time, every stage waiting for the
  one before (decode, YOLO-World, SAM 2.1, CLIP, the DB write and cursor commit);
- ``overlapped bN``: :class:`tools.overlapped_label.OverlappedLabelJob` with batches of N: decode
  on one thread, the models on another (each called once per batch), writes on the runner's.

For each: images/s, the models' busy seconds over the job's wall time (target >= 85% on a GPU),
the decode and write seconds, and the batch sizes the models really got. Then click latency with
SAM 2.1: the first point prompt on an image (embedding included) and the second (cached).

Without the weights in the models dir (the usual case here: the hubs cannot be reached), the real
architectures run with random weights, which find nothing, so :class:`FixedBoxes` hands four fixed
boxes per image to segmentation and verification after the real detector ran (and
:class:`BoxMasks` writes the boxes as masks: a random decoder's masks are noise); the table says
"random weights" and the device ("CPU, 2 cores" on the build machine). Prints a table and
writes benchmarks/results/gpu_pipeline.json.
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.autolabel import CLASSES, FixedBoxes, photo_dir, warm_up  # noqa: E402


class FixedBoxesBatch(FixedBoxes):
    """:class:`FixedBoxes` for batches: the real detector's batch call, then four boxes per image."""

    def detect_batch(self, images: list[Any], prompts: list[str], threshold: float) -> list[Any]:
        batch = getattr(self.inner, "detect_batch", None)
        if batch is not None:
            batch(images, prompts, threshold)
        else:
            for image in images:
                self.inner.detect(image, prompts, threshold)
        return [self.boxes(image, prompts) for image in images]


class BoxMasks:
    """The random-weight SAM 2.1 with its masks replaced by their prompt boxes, filled.

    Its real passes run (their time is what is measured), but a random decoder's masks are noise,
    tens of thousands of runs each, which the store refuses (MAX_RLE_RUNS) and real masks never
    are; the filled boxes keep the write stage at the cost of ordinary masks.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @staticmethod
    def filled(masks: Any, boxes: Any) -> Any:
        import numpy as np

        out = np.zeros_like(np.asarray(masks, dtype=bool))
        for k, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, dtype=int)):
            out[k, max(y1, 0) : y2, max(x1, 0) : x2] = True
        return out

    def segment(self, boxes: Any = None, points: Any = None, point_labels: Any = None) -> Any:
        masks, scores = self.inner.segment(boxes=boxes, points=points, point_labels=point_labels)
        return (masks if boxes is None else self.filled(masks, boxes)), scores

    def segment_batch(self, images: list[Any], boxes: list[Any], keys: Any = None) -> list[Any]:
        answers = self.inner.segment_batch(images, boxes, keys=keys)
        return [(self.filled(m, b), s) for (m, s), b in zip(answers, boxes, strict=True)]


def backends_for(models_dir: Path, device: str) -> tuple[Any, bool]:
    """(the full stack, whether its weights are random)."""
    from types import SimpleNamespace

    from tools.backends.stacks import build_backends
    from tools.models.resolve import ModelMissing

    try:
        real = build_backends("full", models_dir, device=device)
        real.detector, real.segmenter, real.verifier  # noqa: B018 (load all three now)
        return real, False
    except ModelMissing:
        full = build_backends("full", models_dir, random_init=True, device=device)
        stack = SimpleNamespace(
            detector=FixedBoxesBatch(full.detector), segmenter=BoxMasks(full.segmenter),
            verifier=full.verifier,
        )  # fmt: skip
        return stack, True


def distinct_photos(dest: Path, n: int) -> Path:
    """``n`` photo files, copies of the seven photos each with one pixel changed (distinct bytes)."""
    import numpy as np
    from PIL import Image

    source = photo_dir(dest.parent / "originals")
    files = sorted(source.iterdir())
    dest.mkdir(parents=True)
    for k in range(n):
        rgb = np.array(Image.open(files[k % len(files)]).convert("RGB"))
        rgb[0, 0] = (k * 37 % 256, k // 256 % 256, 7)
        Image.fromarray(rgb).save(dest / f"photo{k:03d}.png")
    return dest


def device_name(backends: Any) -> str:
    device = str(getattr(getattr(backends.detector, "inner", backends.detector), "device", "cpu"))
    if device.startswith("cuda"):
        import torch

        return f"{torch.cuda.get_device_name(0)} ({device})"
    return f"CPU, {os.cpu_count()} cores"


def run_job(engine: Any, home: Path, project_id: int, ids: list[int], handler: Any) -> dict[str, Any]:
    from server.jobs import JobRunner
    from tools.auto_label import KIND

    runner = JobRunner(engine, {KIND: handler}, lock_dir=home / "jobs")
    model_s: list[float] = []

    def collect(event: Any) -> None:  # the plain handler's per-image model time
        if event.state == "running" and event.done > 0 and handler.last is not None:
            t = handler.last.timings
            model_s.append(t["detect"] + t["segment"] + t["verify"])

    runner.subscribe(collect)
    job_id = runner.enqueue(project_id, KIND, {"classes": CLASSES, "image_ids": ids, "threshold": 0.3})
    started = time.perf_counter()
    try:
        job = runner.run_job(job_id)
    finally:
        handler.close()
    wall = time.perf_counter() - started
    assert job.state.value == "done", job.error
    busy = getattr(handler, "busy", None)
    models = busy.models if busy is not None and busy.batches else sum(model_s)
    return {
        "images": len(ids), "wall_s": round(wall, 2), "images_per_s": round(len(ids) / wall, 2),
        "model_s": round(models, 2), "model_share": round(models / wall, 3),
        "decode_s": round(busy.decode, 2) if busy is not None and busy.batches else None,
        "write_s": round(busy.write, 2) if busy is not None and busy.batches else None,
        "batch_sizes": sorted(set(busy.batches)) if busy is not None and busy.batches else [1],
    }  # fmt: skip


def click_latency(backends: Any, image: Any) -> dict[str, float]:
    """SAM 2.1: the first point prompt on an image (embedding it) and a second one (cached)."""
    import numpy as np

    segmenter = backends.segmenter
    h, w = image.shape[:2]
    out: dict[str, float] = {}
    for name, point in (("first_click_s", (w * 0.4, h * 0.5)), ("second_click_s", (w * 0.6, h * 0.5))):
        t = time.perf_counter()
        segmenter.set_image(image, key="click-bench")
        segmenter.segment(points=np.array([point], np.float32))
        out[name] = round(time.perf_counter() - t, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--batches", default="4,8", help="overlapped batch sizes to run")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--models",
        type=Path,
        default=Path(os.environ.get("LABELWRIGHT_MODELS", "~/.labelwright/models")).expanduser(),
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "gpu_pipeline.json")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    if args.images < 1 or not batches or min(batches) < 1:
        parser.error(f"--images and every --batches value must be at least 1, got {args.images}, {batches}")

    from sqlmodel import select

    from store.db import new_session, open_engine
    from store.ingest import ingest
    from store.models import Image
    from tools.auto_label import LabelJob
    from tools.overlapped_label import OverlappedLabelJob
    from tools.pipeline import read_rgb

    backends, random_weights = backends_for(args.models, args.device)
    warm_up(backends)
    with tempfile.TemporaryDirectory(prefix="lw-gpu-bench-") as tmp:
        home = Path(tmp) / "home"
        source = distinct_photos(Path(tmp) / "photos", args.images)
        engine = open_engine(home / "labelwright.db")
        with new_session(engine) as session:
            ingest(session, home=home, project_name="bench", source=source)
            rows = sorted(session.exec(select(Image)).all(), key=lambda r: r.id)
        project_id, ids = rows[0].project_id, [r.id for r in rows]

        def factory() -> Any:
            return backends

        plain = LabelJob(home=home, backends_factory=factory)
        runs: dict[str, Any] = {"plain": run_job(engine, home, project_id, ids, plain)}
        for b in batches:
            handler = OverlappedLabelJob(home=home, backends_factory=factory, batch=b)
            runs[f"overlapped b{b}"] = run_job(engine, home, project_id, ids, handler)
        clicks = click_latency(backends, read_rgb(source / "photo000.png"))
        engine.dispose()

    precision = {
        role: getattr(getattr(obj, "inner", obj), "precision", "fp32")
        for role, obj in (
            ("detector", backends.detector), ("segmenter", backends.segmenter),
            ("verifier", backends.verifier),
        )
    }  # fmt: skip
    report = {
        "device": device_name(backends),
        "weights": "random weights (FixedBoxes: four boxes per image)" if random_weights else "real weights",
        "stack": "yolo-world-v2-s + sam2.1-tiny + clip-vit-b-32",
        "precision": precision,
        "load_average": round(os.getloadavg()[0], 2),
        "runs": runs,
        "clicks": clicks,
    }
    print(f"\nfull stack on {report['device']}, {report['weights']}, precision {precision}")
    print(f"load average {report['load_average']}\n")
    head = (
        f"{'run':<16}{'images/s':>10}{'wall s':>9}{'model s':>9}{'model %':>9}{'decode s':>10}"
        f"{'write s':>9}  batches"
    )
    print(head)
    print("-" * len(head))
    for name, r in runs.items():
        dec = "-" if r["decode_s"] is None else f"{r['decode_s']:.2f}"
        wri = "-" if r["write_s"] is None else f"{r['write_s']:.2f}"
        print(
            f"{name:<16}{r['images_per_s']:>10.2f}{r['wall_s']:>9.2f}{r['model_s']:>9.2f}"
            f"{100 * r['model_share']:>8.1f}%{dec:>10}{wri:>9}  {r['batch_sizes']}"
        )
    print(
        f"\nSAM 2.1 click: first {clicks['first_click_s']:.3f} s (embedding), "
        f"second {clicks['second_click_s']:.3f} s"
    )
    speedup = {n: round(r["images_per_s"] / runs["plain"]["images_per_s"], 2) for n, r in runs.items()}
    report["speedup_vs_plain"] = speedup
    print("speed-up over plain:", ", ".join(f"{n} {s}x" for n, s in speedup.items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
