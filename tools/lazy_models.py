"""A job handler's model stack, built the first time a job needs it.

Every process that can run jobs (the server, `labelwright worker`, the CLI's runner) creates all
its handlers at start; most of them never run a job of their kind, so none may load a model
before it is asked to.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


class ModelsOnFirstUse:
    """Base of the job handlers that run the process's model stack (``backends``)."""

    def __init__(self, *, home: Path, backends_factory: Callable[[], Any]) -> None:
        self.home = home
        self.backends_factory = backends_factory
        self._backends: Any = None

    @property
    def backends(self) -> Any:
        if self._backends is None:
            self._backends = self.backends_factory()
        return self._backends
