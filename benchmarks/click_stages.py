"""Benchmark: where a click's time goes, over HTTP, before and after in one run.

    python benchmarks/click_stages.py [--models DIR] [--reps 2]

A real server (the FastAPI app with the lite stack, uvicorn on 127.0.0.1, in this process so its
stages can be timed) answers ``POST .../segment`` with one click in the middle of each object of the
ground-truth set (tests/tools/click_truth.py). Each click is sent twice, once with the segmenter's
point windows stretched to a square ISNet input (before) and once keeping their aspect (after), in
alternating order so both see the same load; the segmenter's mask cache is emptied before each
click (a click on a new object finds nothing there), the detector's per-image cache is kept (as
for the second click on an image in the UI; the first click of each image pays for it).

Per click: the stages' wall and CPU seconds (decode, detector, flood fill, ISNet resize/normalise,
ISNet run, the rest of the segmenter, RLE, polygon, and what is left of the round trip: HTTP,
JSON, permission checks, the image row), the mask's IoU with the truth, and the client's round trip.
Prints a table and writes benchmarks/results/click_stages.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

STAGES = ("decode", "detector", "flood", "isnet_prep", "isnet_run", "segmenter_rest", "rle", "polygon")


class Clock:
    """Adds up wall and CPU seconds per stage of wrapped callables, for the click being timed."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)

    def reset(self) -> None:
        self.wall.clear()
        self.cpu.clear()

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.wall[name] += time.perf_counter() - wall
                self.cpu[name] += time.process_time() - cpu

        return timed

    def patch(self, owner: Any, attr: str, name: str) -> None:
        setattr(owner, attr, self.wrap(name, getattr(owner, attr)))


def start_server(home: Path, models: Path) -> tuple[Any, str, Any]:
    """(uvicorn server, base URL, the app's backends) for ``home`` on a free loopback port."""
    import socket

    import uvicorn

    from server.app import create_app
    from server.settings import Settings

    app = create_app(Settings(home=home, models=models, host="127.0.0.1"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start in 60 s")
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}/api/v1", app.state.backends


def instrument(clock: Clock, segmenter: Any) -> None:
    """Time the stages of a click inside this process (module attributes and the segmenter)."""
    import tools.backends.click_box as click_box
    import tools.segment as segment

    clock.patch(segment, "load_rgb", "decode")
    clock.patch(segment, "object_box_at", "detector")
    clock.patch(segment, "rle_from_mask", "rle")
    clock.patch(segment, "single_polygon", "polygon")
    clock.patch(segment, "compute_mask", "compute_mask")
    clock.patch(click_box, "flood_box", "flood")
    clock.patch(segmenter, "segment", "segmenter")
    clock.patch(segmenter, "_isnet", "isnet")
    clock.patch(segmenter._session, "run", "isnet_run")


def stages_of(clock: Clock, source: dict[str, float], round_trip: float) -> dict[str, float]:
    """The click's stages (seconds) from the clock's totals: the nested ones made exclusive."""
    get = source.get
    out = {name: get(name, 0.0) for name in ("decode", "detector", "flood", "isnet_run", "rle", "polygon")}
    out["isnet_prep"] = get("isnet", 0.0) - get("isnet_run", 0.0)
    out["segmenter_rest"] = get("segmenter", 0.0) - get("isnet", 0.0) - get("flood", 0.0)
    out["http_and_rest"] = round_trip - get("compute_mask", 0.0) - get("polygon", 0.0)
    return {k: round(v, 4) for k, v in out.items()}


def run(models: Path, reps: int, tmp: Path) -> dict[str, Any]:
    import httpx
    from sqlmodel import select

    from store.db import new_session, open_engine
    from store.ingest import ingest
    from store.masks import mask_from_rle
    from store.models import Image
    from tests.tools.click_truth import OPENCV_DATA, PHOTOS, iou, load_rgb, truths

    home, src = tmp / "home", tmp / "src"
    src.mkdir(parents=True)
    for name in PHOTOS:
        shutil.copy(OPENCV_DATA / name, src / name)
    engine = open_engine(home / "labelwright.db")
    with new_session(engine) as session:
        project = ingest(session, home=home, project_name="click", source=src).project_id
        ids = {im.file_name: im.id for im in session.exec(select(Image).where(Image.project_id == project))}
    engine.dispose()
    server, base, backends = start_server(home, models)
    try:
        segmenter = backends().segmenter
        objects = [(name, truth) for name in PHOTOS for truth in truths(name, load_rgb(name))]
        with httpx.Client(base_url=base, timeout=120) as http:

            def click(name: str, xy: tuple[int, int]) -> tuple[dict[str, Any], float]:
                wall = time.perf_counter()
                reply = http.post(f"/projects/{project}/images/{ids[name]}/segment", json={"points": [xy]})
                reply.raise_for_status()
                return reply.json(), time.perf_counter() - wall

            click(*next((n, t.click) for n, t in objects))  # loads the models: not a click's cost
            clock = Clock()
            instrument(clock, segmenter)
            rows: list[dict[str, Any]] = []
            for rep in range(reps):
                for i, (name, truth) in enumerate(objects):
                    modes = ("before", "after") if (i + rep) % 2 == 0 else ("after", "before")
                    for mode in modes:
                        segmenter.point_aspect = mode == "after"
                        segmenter._cache.clear()
                        clock.reset()
                        cpu = time.process_time()
                        body, round_trip = click(name, truth.click)
                        cpu = time.process_time() - cpu
                        rows.append(
                            {
                                "mode": mode, "rep": rep, "photo": name, "object": i,
                                "iou": round(iou(mask_from_rle(body["rle"]).astype(bool), truth.mask), 4),
                                "round_trip_s": round(round_trip, 4), "cpu_s": round(cpu, 4),
                                "wall": stages_of(clock, clock.wall, round_trip),
                                "cpu": stages_of(clock, clock.cpu, cpu),
                            }
                        )  # fmt: skip
        segmenter.point_aspect = True
    finally:
        server.should_exit = True
    return {"rows": rows, "summary": summarise(rows)}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per mode: click IoU, round trip per photo (median, max), median stage seconds."""
    out: dict[str, Any] = {}
    for mode in ("before", "after"):
        mine = [r for r in rows if r["mode"] == mode]
        by_photo: dict[str, list[float]] = defaultdict(list)
        for r in mine:
            by_photo[r["photo"]].append(r["round_trip_s"])
        first = [r for r in mine if r["rep"] == 0]
        out[mode] = {
            "mean_iou": round(statistics.mean(r["iou"] for r in first), 4),
            "min_iou": round(min(r["iou"] for r in first), 4),
            "round_trip_median_s": round(statistics.median(r["round_trip_s"] for r in mine), 3),
            "round_trip_max_s": round(max(r["round_trip_s"] for r in mine), 3),
            "cpu_median_s": round(statistics.median(r["cpu_s"] for r in mine), 3),
            "cpu_max_s": round(max(r["cpu_s"] for r in mine), 3),
            "per_photo": {
                p: {"median_s": round(statistics.median(v), 3), "max_s": round(max(v), 3)}
                for p, v in by_photo.items()
            },
            "stage_median_wall_s": {
                k: round(statistics.median(r["wall"][k] for r in mine), 4) for k in [*STAGES, "http_and_rest"]
            },
            "stage_median_cpu_s": {
                k: round(statistics.median(r["cpu"][k] for r in mine), 4) for k in [*STAGES, "http_and_rest"]
            },
        }
    return out


def print_table(result: dict[str, Any]) -> None:
    s = result["summary"]
    print(f"\nclick over HTTP, lite stack; load average {result['load_average_1min']}")
    print(f"{'':<26}{'before':>12}{'after':>12}")
    keys = ("mean_iou", "min_iou", "round_trip_median_s", "round_trip_max_s", "cpu_median_s", "cpu_max_s")
    for key in keys:
        print(f"{key:<26}{s['before'][key]:>12}{s['after'][key]:>12}")
    for photo in s["after"]["per_photo"]:
        b, a = s["before"]["per_photo"][photo], s["after"]["per_photo"][photo]
        times = f"{b['median_s']:>6}/{b['max_s']:<5}{a['median_s']:>6}/{a['max_s']:<5}"
        print(f"{photo + ' med/max s':<26}{times}")
    print("median stage seconds, wall (CPU):")
    for k in [*STAGES, "http_and_rest"]:
        b = f"{s['before']['stage_median_wall_s'][k]:.3f} ({s['before']['stage_median_cpu_s'][k]:.3f})"
        a = f"{s['after']['stage_median_wall_s'][k]:.3f} ({s['after']['stage_median_cpu_s'][k]:.3f})"
        print(f"  {k:<24}{b:>16}{a:>16}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=Path, default=Path.home() / ".labelwright" / "models")
    parser.add_argument("--reps", type=int, default=2, help="Times each click is sent per mode.")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "click_stages.json")
    args = parser.parse_args()
    if not 1 <= args.reps <= 10:
        raise ValueError(f"expected 1 <= --reps <= 10, got {args.reps}")
    loads = [os.getloadavg()[0]]
    tmp = Path(tempfile.mkdtemp(prefix="lw-click-stages-"))
    try:
        result = run(args.models, args.reps, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    loads.append(os.getloadavg()[0])
    result = {"load_average_1min": [round(v, 2) for v in loads], "cores": os.cpu_count(), **result}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print_table(result)
    print(f"\nsaved {args.out}")


if __name__ == "__main__":
    main()
