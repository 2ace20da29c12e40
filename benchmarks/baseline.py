"""Before/after in one run: the same benchmark script, run against the code of an earlier commit.

``run_baseline`` exports the tree of ``ref`` (default: where this branch left main) to a temporary
directory, puts the *current* benchmark script into it, runs it there with ``--no-baseline`` (the
script puts its own repository first on ``sys.path``, so it imports the old code) and returns the
JSON the script saved. Both measurements then share the machine's load of the moment.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def default_ref() -> str:
    """The commit this branch started from (its merge base with main), else HEAD."""
    out = subprocess.run(["git", "merge-base", "HEAD", "main"], cwd=REPO, capture_output=True, text=True)
    return out.stdout.strip() or "HEAD"


def run_baseline(script: Path, args: list[str], result_name: str, ref: str, timeout: float) -> dict[str, Any]:
    """Run ``script`` with ``args`` on the code of ``ref``; its saved ``benchmarks/results/<result_name>``."""
    with tempfile.TemporaryDirectory(prefix="lw-baseline-") as tmp:
        archive = Path(tmp) / "tree.tar"
        subprocess.run(["git", "archive", "-o", str(archive), ref], cwd=REPO, check=True)
        tree = Path(tmp) / "tree"
        with tarfile.open(archive) as tar:
            tar.extractall(tree, filter="data")
        target = tree / "benchmarks" / script.name
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(script, target)
        shutil.copyfile(Path(__file__), tree / "benchmarks" / "baseline.py")
        subprocess.run(
            [sys.executable, str(target), *args, "--no-baseline"], cwd=tree, check=True, timeout=timeout
        )
        return json.loads((tree / "benchmarks" / "results" / result_name).read_text())
