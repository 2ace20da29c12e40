"""A small LRU of per-image embeddings, keyed by the image's key (e.g. its store id).

A promptable segmenter pays for the image encoder once per image (seconds on CPU) and then answers
many box/point prompts cheaply. An agent often comes back to an image it saw a moment ago (segment,
verify, refine), so keeping the last few embeddings avoids recomputing them. Entries are big (about
16 MB for SAM 2.1 tiny at 1024 px), hence a count bound rather than an unbounded dict.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class EmbeddingCache(Generic[V]):
    """Least-recently-used map from image key to embedding, with hit/miss counters.

    Args:
        capacity: How many embeddings to keep; the least recently used one is dropped beyond it.
    """

    def __init__(self, capacity: int = 8) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Hashable, V] = OrderedDict()

    def get(self, key: Hashable) -> V | None:
        """The embedding for ``key`` (now the most recently used), or None when absent."""
        if key not in self._entries:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return self._entries[key]

    def put(self, key: Hashable, value: V) -> None:
        """Store (or replace) the embedding for ``key``, evicting the least recently used beyond capacity."""
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def get_or_compute(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The cached embedding for ``key``, computing and storing it on a miss."""
        value = self.get(key)
        if value is None:
            value = compute()
            self.put(key, value)
        return value

    def discard(self, key: Hashable) -> None:
        """Forget ``key`` (e.g. the image changed); absent keys are ignored."""
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def keys(self) -> list[Hashable]:
        """Keys from least to most recently used."""
        return list(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)
