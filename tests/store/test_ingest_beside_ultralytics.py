"""Ingest inside a process that imported ultralytics, as the server and the label job do.

ultralytics replaces ``PIL.Image.open`` process-wide; on a file Pillow cannot identify it asks
for pi-heif (and, if missing, tries to pip-install it). A non-image must still be a clean skip.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import REPO


def test_non_image_is_rejected_cleanly_after_ultralytics_import(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        from tools.backends.torchvision_compat import ensure_torchvision
        ensure_torchvision()
        import ultralytics  # noqa: F401  (patches PIL.Image.open)
        from PIL import Image
        assert Image.open.__module__.startswith("ultralytics"), Image.open.__module__
        from store.imagefiles import ImageRejected, decode_image
        try:
            decode_image(b"just some text, not a picture", max_pixels=10**8)
        except ImageRejected as exc:
            print("REJECTED:", exc)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={"YOLO_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "REJECTED: not an image" in out.stdout
