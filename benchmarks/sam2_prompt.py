"""Benchmark: SAM 2.1 on CPU, the second prompt on an image whose embedding is cached.

    python benchmarks/sam2_prompt.py [--config tiny|small] [--threads N] [--repeat 5] [--weights]

What a click or a box on the canvas costs with the full stack once the image was seen: the
``SAM2Segmenter`` is asked for bus.jpg (810x1080) under the image's key, which embeds it once (the
image encoder, seconds on CPU); every later prompt sets the same key again (the embedding comes from
the cache, no encoder) and runs the prompt encoder and mask decoder only. Timed per prompt kind
(box, one click, three clicks), median of ``--repeat``, wall and CPU seconds.

By default the architecture is built with random weights (``random_init``): the time of a forward
pass does not depend on the weights' values, and the machine may not have the checkpoint; the
result says so. ``--weights`` loads the real checkpoint from the models directory instead. Writes
benchmarks/results/sam2_prompt.json. Issue 16's target: <= 0.3 s for the second prompt.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PROMPTS: dict[str, dict[str, Any]] = {
    "box": {"boxes": np.array([[18, 230, 805, 720]], np.float32)},  # the bus
    "click": {"points": np.array([[405, 480]], np.float32), "point_labels": np.array([1])},
    "3 clicks": {
        "points": np.array([[405, 480], [150, 650], [700, 350]], np.float32),
        "point_labels": np.array([1, 1, 0]),
    },
}


def timed(fn: Any) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    import torch
    import ultralytics
    from PIL import Image

    from tools.backends.sam2_segmenter import SAM2Segmenter

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    default_models = os.environ.get("LABELWRIGHT_MODELS", str(Path.home() / ".labelwright" / "models"))
    parser.add_argument("--models", type=Path, default=Path(default_models))
    parser.add_argument("--config", default="tiny", choices=["tiny", "small"])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--repeat", type=int, default=5, help="prompts timed per kind (1..50)")
    parser.add_argument("--weights", action="store_true", help="load the real checkpoint")
    args = parser.parse_args()
    if not 1 <= args.repeat <= 50:
        raise SystemExit(f"--repeat must be 1..50, got {args.repeat}")
    if args.threads:
        torch.set_num_threads(args.threads)
    rgb = np.asarray(Image.open(Path(ultralytics.__file__).parent / "assets" / "bus.jpg").convert("RGB"))
    built = time.perf_counter()
    segmenter = SAM2Segmenter(args.models, args.config, device="cpu", random_init=not args.weights)
    build_s = time.perf_counter() - built
    first_wall, first_cpu = timed(lambda: segmenter.set_image(rgb, key=1))  # the encoder, once
    segmenter.segment(**PROMPTS["box"])  # first decoder call: lazy allocations are not a prompt
    result: dict[str, Any] = {
        "config": args.config,
        "weights": "checkpoint" if args.weights else "random (architecture only: same cost per pass)",
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "image": "bus.jpg 810x1080",
        "build_s": round(build_s, 2),
        "embed_s": round(first_wall, 3),
        "embed_cpu_s": round(first_cpu, 3),
        "cache": {},
        "prompts": {},
    }
    for kind, prompt in PROMPTS.items():
        walls, cpus = [], []
        for _ in range(args.repeat):
            wall, cpu = timed(
                lambda prompt=prompt: (segmenter.set_image(rgb, key=1), segmenter.segment(**prompt))
            )
            walls.append(wall)
            cpus.append(cpu)
        result["prompts"][kind] = {
            "median_s": round(statistics.median(walls), 3),
            "max_s": round(max(walls), 3),
            "median_cpu_s": round(statistics.median(cpus), 3),
        }
    result["cache"] = {"hits": segmenter.cache.hits, "misses": segmenter.cache.misses}
    result["load_average"] = [round(v, 2) for v in os.getloadavg()]
    print(
        f"SAM 2.1 {args.config} on CPU ({torch.get_num_threads()} threads, {result['weights']}), "
        f"{result['image']}: embedding {result['embed_s']} s (CPU {result['embed_cpu_s']} s), once"
    )
    print(f"{'second prompt':<16}{'median s':>10}{'max s':>8}{'CPU s':>8}   target <= 0.3 s")
    for kind, p in result["prompts"].items():
        print(f"{kind:<16}{p['median_s']:>10}{p['max_s']:>8}{p['median_cpu_s']:>8}")
    print(f"embedding cache: {result['cache']}; load average {result['load_average']}")
    out = REPO / "benchmarks" / "results" / "sam2_prompt.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"saved {out}")


if __name__ == "__main__":
    main()
