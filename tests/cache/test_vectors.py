"""The semantic cache's vector index (per-scope search, removal, eviction) and vector bytes."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from hybridgate.cache.vectors import EXACT_LIMIT, VectorIndex, from_bytes, normalise, to_bytes


def unit(rng: np.random.Generator, n: int, dim: int = 32) -> NDArray[np.float32]:
    rows = rng.normal(size=(n, dim)).astype(np.float32)
    unit_rows: NDArray[np.float32] = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    return unit_rows


def test_search_ranks_by_cosine_within_one_scope() -> None:
    index = VectorIndex(max_entries=10)
    index.add("s", "x", np.array([1.0, 0.0, 0.0], np.float32), "x text")
    index.add("s", "xy", np.array([1.0, 1.0, 0.0], np.float32), "xy text")
    index.add("s", "z", np.array([0.0, 0.0, 1.0], np.float32), "z text")
    index.add("other", "x2", np.array([1.0, 0.0, 0.0], np.float32), "elsewhere")
    found = index.search("s", np.array([2.0, 0.1, 0.0], np.float32), k=2)
    assert [key for key, _, _ in found] == ["x", "xy"]
    assert found[0][2] == "x text" and 0.99 < found[0][1] <= 1.0
    expected = float(normalise(np.array([2.0, 0.1, 0.0])) @ normalise(np.array([1.0, 1.0, 0.0])))
    assert found[1][1] == pytest.approx(expected, abs=1e-5)
    assert index.search("nowhere", np.ones(3, np.float32)) == []


def test_remove_and_re_add() -> None:
    index = VectorIndex(max_entries=10)
    for i, key in enumerate("abc"):
        index.add("s", key, np.eye(3, dtype=np.float32)[i], key)
    index.remove("s", "a")
    index.remove("s", "missing")
    index.remove("no-scope", "a")
    assert len(index) == 2
    assert {k for k, _, _ in index.search("s", np.ones(3, np.float32), k=4)} == {"b", "c"}
    index.add("s", "b", np.eye(3, dtype=np.float32)[0], "moved")  # same key replaces the row
    assert len(index) == 2
    assert index.search("s", np.eye(3, dtype=np.float32)[0], k=1)[0][:1] == ("b",)
    index.remove("s", "b")
    index.remove("s", "c")
    assert len(index) == 0 and index.search("s", np.ones(3, np.float32)) == []


def test_oldest_entry_is_evicted_across_scopes() -> None:
    index = VectorIndex(max_entries=3, dim=2)
    index.add("s1", "old", np.array([1.0, 0.0], np.float32), "old")
    index.add("s2", "mid", np.array([1.0, 0.0], np.float32), "mid")
    index.add("s1", "new", np.array([0.0, 1.0], np.float32), "new")
    index.add("s1", "old", np.array([1.0, 0.1], np.float32), "old again")  # refreshed: now newest
    index.add("s2", "newest", np.array([1.0, 0.0], np.float32), "newest")
    assert len(index) == 3
    assert [k for k, _, _ in index.search("s2", np.array([1.0, 0.0], np.float32))] == ["newest"]
    assert {k for k, _, _ in index.search("s1", np.array([1.0, 0.0], np.float32))} == {"old", "new"}


def test_large_scope_prefilter_finds_the_exact_nearest() -> None:
    rng = np.random.default_rng(7)
    rows = unit(rng, EXACT_LIMIT + 1000)
    index = VectorIndex(max_entries=len(rows))
    for i, row in enumerate(rows):
        index.add("big", str(i), row, f"t{i}")
    for target in (3, 1234, len(rows) - 1):
        query = normalise(rows[target] + 0.1 * unit(rng, 1)[0])
        best = index.search("big", query, k=4)
        exact = np.argsort(-(rows @ query))[:1]
        assert best[0][0] == str(int(exact[0])) == str(target)
        assert [s for _, s, _ in best] == sorted((s for _, s, _ in best), reverse=True)


def test_wrong_dimension_is_refused() -> None:
    index = VectorIndex(max_entries=2, dim=3)
    with pytest.raises(ValueError, match="dimensions"):
        index.add("s", "k", np.ones(4, np.float32), "t")
    with pytest.raises(ValueError):
        VectorIndex(max_entries=0)


def test_vector_bytes_round_trip() -> None:
    vector = unit(np.random.default_rng(1), 1, dim=256)[0]
    data = to_bytes(vector)
    assert len(data) == 512
    back = from_bytes(data)
    assert back.dtype == np.float32 and back.shape == (256,)
    assert float(back @ vector) > 0.99999
    with pytest.raises(ValueError):
        from_bytes(b"abc")
