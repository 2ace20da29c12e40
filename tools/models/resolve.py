"""Resolve a model id to its file, or say exactly what is missing and how to get it."""

from __future__ import annotations

from pathlib import Path

from tools.models import catalog
from tools.models.spec import ModelEntry


class ModelMissing(FileNotFoundError):
    """A model file is not in the models dir (or is cut short). The message is for the user as is:
    it names the file, where it must go, and the command that fetches or imports it.

    Attributes:
        model_id: the catalog id asked for.
        expected: the absolute path the file must have (the preferred one, for full-stack entries).
        command: the `labelwright models ...` command that provides it.
    """

    def __init__(self, message: str, *, model_id: str, expected: Path, command: str) -> None:
        super().__init__(message)
        self.model_id = model_id
        self.expected = expected
        self.command = command


def how_to_get(entry: ModelEntry) -> str:
    """The command that puts this entry's file in place."""
    return f"labelwright models fetch {entry.id}" if entry.fetchable else "labelwright models import DIR"


def _missing(models_dir: Path, entry: ModelEntry, problem: str) -> ModelMissing:
    assert entry.path is not None
    expected = models_dir / entry.path
    command = how_to_get(entry)
    if entry.fetchable:
        action = f"Run `{command}` (builds it from {entry.source})."
    else:
        names = ", ".join(Path(p).name for p in entry.paths)
        action = (
            f"It cannot be downloaded by labelwright: get {names} ({entry.source}), put it in a folder DIR "
            f"and run `{command}`, or copy it to {expected}."
        )
    return ModelMissing(
        f"model {entry.id!r} ({entry.role}, {entry.stack} stack): {problem}. {action}",
        model_id=entry.id,
        expected=expected,
        command=command,
    )


def resolve(models_dir: Path, model_id: str) -> Path:
    """The file of `model_id` under `models_dir`, preferred name first, then accepted alternatives.

    Checks presence and, where the catalog fixes it, the size (cheap, catches a truncated copy); the
    full checksum is `models verify`'s job.

    Raises:
        ValueError: unknown id, or an id that names a service (Ollama) rather than a file.
        ModelMissing: no acceptable file is present, or it has the wrong size.
    """
    entry = catalog.get(model_id)
    if entry.path is None:
        raise ValueError(f"model {model_id!r} is a service, not a file: {entry.source}")
    for relative in entry.paths:
        candidate = models_dir / relative
        if not candidate.is_file():
            continue
        size = candidate.stat().st_size
        if relative == entry.path and entry.size is not None and size != entry.size:
            raise _missing(models_dir, entry, f"{candidate} has {size} bytes, expected {entry.size}")
        return candidate
    raise _missing(models_dir, entry, f"{models_dir / entry.path} does not exist")
