"""Benchmark: audit quality on faults planted into correctly labelled real photos, and its speed.

    python benchmarks/audit.py [--models DIR] [--stack lite|full] [--baseline-ref REF | --no-baseline]

The test set (hand-drawn labels on bus.jpg, zidane.jpg and four skimage photos, then wrong class,
tiny box, duplicate, removed object and spilling mask planted) is the one of
tests/tools/test_audit_planted.py. Prints recall per planted kind, the findings on the clean
labels (false alarms), and seconds per 100 annotations with and without the model checks (the
fastest of ``--repeat`` runs: the first run also loads the models); writes
benchmarks/results/audit.json. Unless ``--no-baseline``, the same script first runs on the code of
``--baseline-ref`` (default: this branch's merge base with main), so before and after share one
run's load (see benchmarks/baseline.py).
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


def _count_cpu(project_id: int) -> list[float]:
    """CPU seconds of each audit of the planted project with models, as ``measure`` runs them.

    Wall time on a shared 2-core machine follows the other users' load; the process's CPU time
    (every thread, the models' too) hardly does, so before and after compare even when the load
    moved between the two runs. Counts the audits of ``project_id`` that run the models.
    """
    import tools.audit.runner as runner

    audit, seconds = runner.run_audit, []

    def counted(session: Any, **kwargs: Any) -> Any:
        began = time.process_time()
        try:
            return audit(session, **kwargs)
        finally:
            if kwargs.get("backends") is not None and kwargs.get("project_id") == project_id:
                seconds.append(time.process_time() - began)

    runner.run_audit = counted  # type: ignore[assignment]
    return seconds


def main() -> None:
    from tests.tools.test_audit_planted import build, measure, photo_dir
    from tools.backends.stacks import build_backends

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    default_models = os.environ.get("LABELWRIGHT_MODELS", str(Path.home() / ".labelwright" / "models"))
    parser.add_argument("--models", type=Path, default=Path(default_models))
    parser.add_argument("--stack", default="lite")
    parser.add_argument("--threads", type=int, default=None, help="model threads (default: the backend's)")
    parser.add_argument("--baseline-ref", default=None, help="commit to compare with (default: merge base)")
    parser.add_argument("--no-baseline", action="store_true", help="measure this tree only")
    parser.add_argument("--repeat", type=int, default=3, help="runs (1..10); the fastest times count")
    args = parser.parse_args()
    if not 1 <= args.repeat <= 10:
        raise SystemExit(f"--repeat must be 1..10, got {args.repeat}")
    before = None
    if not args.no_baseline:
        from benchmarks.baseline import default_ref, run_baseline

        ref = args.baseline_ref or default_ref()
        print(f"--- baseline: the same benchmark on {ref[:12]} ---")
        before = run_baseline(
            Path(__file__),
            [
                "--models",
                str(args.models),
                "--stack",
                args.stack,
                *(["--threads", str(args.threads)] if args.threads else []),
                *["--repeat", str(args.repeat)],
            ],
            "audit.json",
            ref,
            900,
        )
        before["ref"] = ref
        print("--- this tree ---")
    with tempfile.TemporaryDirectory() as tmp:
        planted = build(Path(tmp) / "home", photo_dir(Path(tmp) / "src"))
        options = {"threads": args.threads} if args.threads else {}
        backends = build_backends(args.stack, args.models, **options)
        cpu = _count_cpu(planted.planted_id)
        runs = [measure(planted, backends) for _ in range(args.repeat)]  # noise of a shared machine
        result = runs[0]
        for key in ("seconds_per_100_annotations", "seconds_per_100_annotations_no_models"):
            result[f"{key}_runs"] = [r[key] for r in runs]
            result[key] = min(result[f"{key}_runs"])
        n = result["planted_annotations"]
        result["cpu_seconds_per_100_annotations_runs"] = [round(c / n * 100, 2) for c in cpu]
        result["cpu_seconds_per_100_annotations"] = min(result["cpu_seconds_per_100_annotations_runs"])
        planted.engine.dispose()
    result["stack"], result["threads"] = args.stack, args.threads
    print(f"{'planted kind':<16}{'planted':>8}{'caught':>8}{'recall':>8}")
    for kind, counts in result["recall"].items():
        recall = counts["caught"] / counts["planted"]
        print(f"{kind:<16}{counts['planted']:>8}{counts['caught']:>8}{recall:>8.2f}")
    total = sum(c["planted"] for c in result["recall"].values())
    hit = sum(c["caught"] for c in result["recall"].values())
    print(f"{'all':<16}{total:>8}{hit:>8}{hit / total:>8.2f}")
    print(
        f"clean labels: {result['clean_annotations']} annotations, "
        f"{len(result['clean_findings'])} findings (false alarms)"
    )
    for f in result["clean_findings"]:
        print(f"  {f['kind']} on {f['image']} #{f['annotation_id']}: {f['message']}")
    print(
        f"planted project: {result['planted_annotations']} annotations, "
        f"{result['planted_findings']} open findings, "
        f"{len(result['planted_other_findings'])} naming no plant:"
    )
    for f in result["planted_other_findings"]:
        print(f"  {f['kind']} on {f['image'] or 'project'} #{f['annotation_id']}: {f['message']}")
    print(
        f"time per 100 annotations: {result['seconds_per_100_annotations']} s with models, "
        f"{result['seconds_per_100_annotations_no_models']} s without; "
        f"{result['cpu_seconds_per_100_annotations']} CPU-s with models"
    )
    result["load_average"] = os.getloadavg()
    if before is not None:
        print(f"\n{'seconds per 100 annotations':<32}{'before':>10}{'after':>10}")
        for key, what in (
            ("seconds_per_100_annotations", "with models"),
            ("seconds_per_100_annotations_no_models", "without"),
            ("cpu_seconds_per_100_annotations", "CPU s with models"),
        ):
            if key not in before:
                continue
            print(f"{what:<32}{before[key]:>10}{result[key]:>10}")
        print(f"load average (1, 5, 15 min): {', '.join(f'{v:.2f}' for v in result['load_average'])}")
        result["before"] = before
    out = REPO / "benchmarks" / "results" / "audit.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"saved {out}")


if __name__ == "__main__":
    main()
