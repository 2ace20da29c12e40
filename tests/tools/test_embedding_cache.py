from __future__ import annotations

import pytest

from tools.backends.embedding_cache import EmbeddingCache


def test_get_returns_stored_value_and_counts_hits_and_misses() -> None:
    cache: EmbeddingCache[str] = EmbeddingCache(capacity=2)
    assert cache.get("a") is None
    cache.put("a", "emb-a")
    assert cache.get("a") == "emb-a"
    assert (cache.hits, cache.misses) == (1, 1)


def test_least_recently_used_is_evicted_first() -> None:
    cache: EmbeddingCache[int] = EmbeddingCache(capacity=2)
    cache.put(1, 10)
    cache.put(2, 20)
    assert cache.get(1) == 10  # 1 is now the most recent, so 2 goes next
    cache.put(3, 30)
    assert 2 not in cache
    assert cache.keys() == [1, 3]
    assert len(cache) == 2


def test_put_replaces_existing_key_without_growing() -> None:
    cache: EmbeddingCache[str] = EmbeddingCache(capacity=2)
    cache.put("k", "old")
    cache.put("k", "new")
    assert cache.get("k") == "new"
    assert len(cache) == 1


def test_get_or_compute_computes_once_per_key() -> None:
    calls: list[str] = []

    def compute() -> str:
        calls.append("x")
        return f"emb{len(calls)}"

    cache: EmbeddingCache[str] = EmbeddingCache(capacity=4)
    assert cache.get_or_compute("img", compute) == "emb1"
    assert cache.get_or_compute("img", compute) == "emb1"
    assert calls == ["x"]


def test_discard_and_clear_forget_entries() -> None:
    cache: EmbeddingCache[int] = EmbeddingCache(capacity=3)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.discard("a")
    cache.discard("missing")
    assert cache.keys() == ["b"]
    cache.clear()
    assert len(cache) == 0


@pytest.mark.parametrize("capacity", [0, -1])
def test_capacity_below_one_is_refused(capacity: int) -> None:
    with pytest.raises(ValueError, match=f"at least 1, got {capacity}"):
        EmbeddingCache(capacity=capacity)
