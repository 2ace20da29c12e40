"""The lite segmenter as it was before issue 16, loaded from git, so before/after run in one process.

"Before" is the code of ``BASE`` (the commit this work started from: a fixed 1024x1024 ISNet pass per
box, a click answered inside a fixed window) with the fixed-size ``isnet-medium.onnx``. Loading that
code from git history, rather than keeping an old mode in the product, lets every benchmark run
compare both under the same load.
"""

from __future__ import annotations

import subprocess
import types
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BASE = "462fde6"  # main when the segmentation work of issue 16 began
MODULE = "tools/backends/lite_segmenter.py"


def before_module(rev: str = BASE) -> types.ModuleType:
    """The lite segmenter module of ``rev``; RuntimeError if git cannot show it."""
    proc = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{rev}:{MODULE}"], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"cannot load {MODULE} at {rev} from git: {proc.stderr.strip()}")
    module = types.ModuleType("lite_segmenter_before")
    exec(compile(proc.stdout, f"{rev}:{MODULE}", "exec"), module.__dict__)  # noqa: S102 - our own history
    return module


def before_segmenter(models_dir: Path, *, grabcut: bool = False, rev: str = BASE) -> Any:
    """Today's-at-``rev`` lite segmenter: ISNet medium at 1024 px, or GrabCut."""
    module = before_module(rev)
    if grabcut:
        return module.LiteSegmenter(None, model_id="before-grabcut")
    path = models_dir / "lite" / "isnet-medium.onnx"
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: run `labelwright models fetch isnet-medium`")
    return module.LiteSegmenter(path, model_id="before-isnet-medium-1024")


class StageClock:
    """Wraps a lite segmenter's ISNet and GrabCut calls to add up the wall and CPU time each takes.

    CPU seconds (all threads of this process) say what a call costs whatever else the machine runs;
    wall seconds on a loaded machine mostly measure the load.
    """

    def __init__(self, segmenter: Any) -> None:
        import time

        self.seconds = {"isnet": 0.0, "grabcut": 0.0}
        self.cpu_seconds = {"isnet": 0.0, "grabcut": 0.0}
        self.calls = {"isnet": 0, "grabcut": 0}
        for name in ("isnet", "grabcut"):
            inner = getattr(segmenter, f"_{name}")

            def timed(*args: Any, _inner: Any = inner, _name: str = name) -> Any:
                start, cpu = time.perf_counter(), time.process_time()
                try:
                    return _inner(*args)
                finally:
                    self.seconds[_name] += time.perf_counter() - start
                    self.cpu_seconds[_name] += time.process_time() - cpu
                    self.calls[_name] += 1

            setattr(segmenter, f"_{name}", timed)
