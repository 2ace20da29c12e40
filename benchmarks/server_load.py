"""Server under load: N simulated annotators editing and browsing a 100k-image project over HTTP.

The project is built with the bulk inserts of ``benchmarks/store_scale.py``; the server runs as a
separate process (uvicorn, 127.0.0.1 only, auth on: every annotator has its own API token), and
the annotators are threads of this process, each with its own keep-alive connection. Each one
loops over a mix of operations until the time is up:

- ``increment``: read a shared "counter" annotation (its box width), PATCH width+1 naming the
  version read; a 409 means someone else won: re-read and retry. At the end the sum of the
  counters must equal the number of successful increments: ``lost_updates`` must be 0.
- ``list_images``: a page of images filtered by a random class (and sometimes status) at a random page.
- ``list_annotations``: the annotations of a random image.
- ``create`` then ``delete``: add a box to a random image, then delete it (naming its version).

One more client listens to the project's event stream and counts what arrives.

    .venv/bin/python benchmarks/server_load.py                       # 8 annotators, 60 s, 100k images
    .venv/bin/python benchmarks/server_load.py --annotators 4 --seconds 10 --images 2000 --annotations 5000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from store_scale import CLASSES, build  # noqa: E402

from store.db import new_session, open_engine  # noqa: E402
from store.users import create_token, create_user, set_membership  # noqa: E402

RESULTS = Path(__file__).with_name("results") / "server_load.json"
MAX_ANNOTATORS = 64
MAX_SECONDS = 600
MIX = (("increment", 0.4), ("list_images", 0.25), ("list_annotations", 0.15), ("create_delete", 0.2))
SERVER = """
import sys, uvicorn
from pathlib import Path
from server.app import create_app
from server.settings import Settings
settings = Settings(home=Path(sys.argv[1]), host="127.0.0.1", local_mode=False)
uvicorn.run(create_app(settings), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.error_samples: list[str] = []
        self.conflicts = 0
        self.increments = 0

    def record(self, op: str, started: float, response: httpx.Response, ok: tuple[int, ...]) -> bool:
        with self.lock:
            self.latency[op].append((time.perf_counter() - started) * 1000)
            if response.status_code in ok:
                return True
            if response.status_code == 409 and op == "patch":
                self.conflicts += 1
                return False
            self.errors[op] += 1
            if len(self.error_samples) < 10:
                self.error_samples.append(f"{op}: {response.status_code} {response.text[:200]}")
            return False


class Annotator(threading.Thread):
    def __init__(
        self, base: str, token: str, world: dict[str, Any], stats: Stats, until: float, seed: int
    ) -> None:
        super().__init__(daemon=True)
        self.http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        self.world, self.stats, self.until = world, stats, until
        self.rand = random.Random(seed)
        self.api = f"/api/v1/projects/{world['project_id']}"

    def call(self, op: str, method: str, url: str, ok: tuple[int, ...] = (200,), **kw: Any) -> httpx.Response:
        started = time.perf_counter()
        response = self.http.request(method, url, **kw)
        self.stats.record(op, started, response, ok)
        return response

    def run(self) -> None:
        ops, weights = zip(*MIX, strict=True)
        while time.monotonic() < self.until:
            getattr(self, self.rand.choices(ops, weights)[0])()
        self.http.close()

    def increment(self) -> None:
        target = f"{self.api}/annotations/{self.rand.choice(self.world['counters'])}"
        while time.monotonic() < self.until + 5:  # finish an increment that started in time
            current = self.call("get", "GET", target)
            if current.status_code != 200:
                return
            x, y, w, h = current.json()["bbox"]
            body = {"version": current.json()["version"], "bbox": [x, y, w + 1, h]}
            started = time.perf_counter()
            response = self.http.patch(target, json=body)
            if self.stats.record("patch", started, response, (200,)):
                with self.stats.lock:
                    self.stats.increments += 1
                return
            if response.status_code != 409:
                return

    def list_images(self) -> None:
        params: dict[str, Any] = {
            "class": self.rand.choice(CLASSES),
            "offset": self.rand.randrange(0, 20) * 50,
        }
        if self.rand.random() < 0.3:
            params["status"] = self.rand.choice(["proposed", "accepted", "rejected"])
        self.call("list_images", "GET", f"{self.api}/images", params=params)

    def list_annotations(self) -> None:
        image_id = self.world["first_image"] + self.rand.randrange(self.world["images"])
        self.call("list_annotations", "GET", f"{self.api}/annotations", params={"image_id": image_id})

    def create_delete(self) -> None:
        image_id = self.world["first_image"] + self.rand.randrange(self.world["images"])
        body = {
            "image_id": image_id,
            "category_id": self.rand.choice(self.world["categories"]),
            "bbox": [1, 1, 20, 20],
        }
        made = self.call("create", "POST", f"{self.api}/annotations", ok=(201,), json=body)
        if made.status_code == 201:
            ann = made.json()
            self.call(
                "delete",
                "DELETE",
                f"{self.api}/annotations/{ann['id']}",
                ok=(204,),
                params={"version": ann["version"]},
            )


def listen(base: str, url: str, token: str, counts: dict[str, int], stop: threading.Event) -> None:
    try:
        with httpx.stream(
            "GET", base + url, headers={"Authorization": f"Bearer {token}"}, timeout=None
        ) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    counts[json.loads(line[6:])["kind"]] += 1
                if stop.is_set():
                    return
    except httpx.TransportError:
        return


def setup(home: Path, args: argparse.Namespace) -> dict[str, Any]:
    engine = open_engine(home / "labelwright.db")
    started = time.perf_counter()
    project_id, build_times = build(
        engine, n_images=args.images, n_annotations=args.annotations, seed=args.seed
    )
    with new_session(engine) as session:
        tokens = []
        for i in range(args.annotators + 1):
            user = create_user(session, username=f"annotator{i}")
            set_membership(session, user_id=user.id, project_id=project_id, role="annotator")
            tokens.append(create_token(session, user_id=user.id)[0])
    with engine.connect() as conn:
        first_image = conn.exec_driver_sql(
            "SELECT min(id) FROM image WHERE project_id = ?", (project_id,)
        ).scalar()
        categories = [
            r[0] for r in conn.exec_driver_sql("SELECT id FROM category WHERE project_id = ?", (project_id,))
        ]
    engine.dispose()
    build_times["total_s"] = time.perf_counter() - started
    return {
        "project_id": project_id,
        "first_image": first_image,
        "images": args.images,
        "categories": categories,
        "tokens": tokens,
        "build": build_times,
    }


def start_server(home: Path, port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(home), str(port)], cwd=Path(__file__).parents[1]
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not start within 60 s")


def make_counters(base: str, world: dict[str, Any], token: str, n: int) -> list[int]:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as http:
        ids = []
        for k in range(n):
            body = {
                "image_id": world["first_image"] + k,
                "category_id": world["categories"][0],
                "bbox": [0, 0, 1, 1],
            }
            response = http.post(f"/api/v1/projects/{world['project_id']}/annotations", json=body)
            response.raise_for_status()
            ids.append(response.json()["id"])
        return ids


def summarize(latency: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    out = {}
    for op, samples in sorted(latency.items()):
        ordered = sorted(samples)
        out[op] = {
            "count": len(ordered),
            "p50_ms": statistics.median(ordered),
            "p95_ms": ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))],
            "max_ms": ordered[-1],
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotators", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--annotations", type=int, default=200_000)
    parser.add_argument(
        "--counters", type=int, default=None, help="shared counter rows (default: annotators)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not 1 <= args.annotators <= MAX_ANNOTATORS or not 0 < args.seconds <= MAX_SECONDS:
        raise SystemExit(f"need 1 <= annotators <= {MAX_ANNOTATORS} and 0 < seconds <= {MAX_SECONDS}")

    with tempfile.TemporaryDirectory(prefix="lw-load-") as tmp:
        home = Path(tmp)
        world = setup(home, args)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(home, port)
        try:
            world["counters"] = make_counters(
                base, world, world["tokens"][-1], args.counters or args.annotators
            )
            stats, stop, events = Stats(), threading.Event(), defaultdict(int)
            listener = threading.Thread(
                target=listen,
                args=(
                    base,
                    f"/api/v1/projects/{world['project_id']}/events",
                    world["tokens"][-1],
                    events,
                    stop,
                ),
                daemon=True,
            )
            listener.start()
            until = time.monotonic() + args.seconds
            workers = [
                Annotator(base, world["tokens"][i], world, stats, until, args.seed + i)
                for i in range(args.annotators)
            ]
            started = time.monotonic()
            for w in workers:
                w.start()
            for w in workers:
                w.join(args.seconds + 60)
            elapsed = time.monotonic() - started
            with httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {world['tokens'][-1]}"}
            ) as http:
                counted = sum(
                    int(http.get(f"/api/v1/projects/{world['project_id']}/annotations/{i}").json()["bbox"][2])
                    - 1
                    for i in world["counters"]
                )
            time.sleep(0.5)  # let the last events arrive
            stop.set()
        finally:
            server.terminate()
            server.wait(20)

    ops = summarize(stats.latency)
    total_requests = sum(row["count"] for row in ops.values())
    result = {
        "annotators": args.annotators,
        "seconds": round(elapsed, 1),
        "images": args.images,
        "annotations": args.annotations,
        "counters": len(world["counters"]),
        "build": world["build"],
        "operations": ops,
        "requests": total_requests,
        "requests_per_s": total_requests / elapsed,
        "errors": dict(stats.errors),
        "error_samples": stats.error_samples,
        "conflicts_409_retried": stats.conflicts,
        "successful_increments": stats.increments,
        "counter_total": counted,
        "lost_updates": stats.increments - counted,
        "events_received": dict(events),
        "load_average_1m": os.getloadavg()[0],  # the machine is shared: read latencies against it
        "cpus": os.cpu_count(),
    }
    print(
        f"\nserver_load: {args.annotators} annotators x {elapsed:.0f} s on {args.images:,} images / "
        f"{args.annotations:,} annotations (built in {world['build']['total_s']:.0f} s)"
    )
    print(f"  {'operation':<18} {'count':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for op, row in ops.items():
        print(f"  {op:<18} {row['count']:>7} {row['p50_ms']:8.1f} {row['p95_ms']:8.1f} {row['max_ms']:8.1f}")
    print(
        f"  requests/s {result['requests_per_s']:.0f}; "
        f"errors {sum(stats.errors.values())}: {dict(stats.errors)}"
    )
    print(
        f"  increments {stats.increments}, counters sum {counted}, lost updates {result['lost_updates']}, "
        f"409s retried {stats.conflicts}; events received {dict(events)}"
    )
    for sample in stats.error_samples:
        print(f"  error: {sample}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(f"saved {RESULTS}")
    return 0 if result["lost_updates"] == 0 and not stats.errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
