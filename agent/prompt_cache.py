"""System+tools prefixes' KV state on disk, so a fresh llama.cpp process skips re-reading them.

The agents' first system message and tool list are ~3,300 tokens that a 1.5B model on 2 CPU
cores reads in 65-110 s; in one process the slot's prompt cache then keeps them, but every new
process (a one-shot CLI call after the shared endpoint idled out, a restarted server) paid that
again. llama.cpp's slot save/restore writes a slot's tokens and KV cache to a file and reads it
back in well under a second, so the first process to read a prefix saves it and the others
restore it.

Only the prefix is saved (a request of just the first system message and the tools), never a
conversation: the file holds the same text as the code that built it, not what a user typed.
The second system message the command agent sends (the project's facts) is not in the key, so
projects share one file. Files are keyed by the model file and the llama.cpp build, and the
:data:`KEEP` most recently used are kept.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

KEEP = 8  # prefixes kept on disk; a 3,300-token prefix of the 1.5B model is ~95 MB
MIN_PREFIX_CHARS = 2000  # shorter prefixes are read again faster than a file is written
SUFFIX = ".slot"


def prefix_of(request: dict[str, Any]) -> dict[str, Any] | None:
    """The part of a chat request that :class:`PromptCache` keys on: its first message when that
    is a system message, and its tools; None when there is none or it is too short to be worth it."""
    messages = request.get("messages") or []
    if not messages or messages[0].get("role") != "system":
        return None
    prefix = {"messages": [{"role": "system", "content": messages[0].get("content", "")}]}
    if request.get("tools"):
        prefix["tools"] = request["tools"]
    if len(json.dumps(prefix)) < MIN_PREFIX_CHARS:
        return None
    return prefix


class PromptCache:
    """The directory of saved prefixes for one model file (see the module's docstring).

    Args:
        directory: where the files live; llama.cpp's ``slot_save_path``.
        model_path: the .gguf file; its name, size and modification time are part of each key,
            with the llama.cpp build, since a slot file only loads into the same model and build.
    """

    def __init__(self, directory: Path, model_path: Path) -> None:
        import xllamacpp

        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        stat = model_path.stat()
        version = getattr(xllamacpp, "__version__", "")
        self._model_id = f"{model_path.name}:{stat.st_size}:{stat.st_mtime_ns}:{version}"

    def key(self, prefix: dict[str, Any]) -> str:
        text = json.dumps({"model": self._model_id, **prefix}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def file(self, key: str) -> str:
        """The name llama.cpp is given (a bare file name inside ``slot_save_path``)."""
        return key + SUFFIX

    def has(self, key: str) -> bool:
        return (self.directory / self.file(key)).is_file()

    def used(self, key: str) -> None:
        """Mark ``key`` recently used, so :meth:`trim` keeps it."""
        try:
            os.utime(self.directory / self.file(key))
        except OSError:
            pass

    def temporary(self, key: str) -> str:
        """A per-process name to save to before :meth:`publish`: two processes saving the same
        prefix never write one file at once, and a reader never sees half of one."""
        return f"{key}.{os.getpid()}.tmp"

    def publish(self, key: str) -> None:
        os.replace(self.directory / self.temporary(key), self.directory / self.file(key))
        self.trim()

    def forget(self, key: str) -> None:
        """Remove a file llama.cpp refused to restore (truncated, from another build)."""
        (self.directory / self.file(key)).unlink(missing_ok=True)

    def trim(self) -> None:
        saved: list[tuple[float, Path]] = []
        for path in self.directory.glob("*" + SUFFIX):
            try:
                saved.append((path.stat().st_mtime, path))
            except FileNotFoundError:  # another process trimmed it just now
                continue
        for _, old in sorted(saved, reverse=True)[KEEP:]:
            old.unlink(missing_ok=True)
