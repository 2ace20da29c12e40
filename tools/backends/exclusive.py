"""One image at a time per segmenter: ``set_image`` then ``segment`` is one step.

A segmenter keeps the image it was last given (SAM's embedding, ISNet's crop source), so two
threads that share it (a label job's model thread and a click on the canvas, in one server)
must not interleave: a click's ``set_image`` between a job's ``set_image`` and ``segment`` would
give the job masks of the clicked image. Every caller holds :func:`exclusive` across the pair.
"""

from __future__ import annotations

import threading
from typing import Any

_guard = threading.Lock()


def exclusive(segmenter: Any) -> threading.RLock:
    """The segmenter's own lock (re-entrant: a holder may call helpers that take it again)."""
    with _guard:
        lock = getattr(segmenter, "_labelwright_lock", None)
        if lock is None:
            lock = threading.RLock()
            segmenter._labelwright_lock = lock
        return lock
