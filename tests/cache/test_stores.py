"""The memory and SQLite stores: bounds, expiry, persistence and semantic notes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hybridgate.cache.memory import MemoryStore, SemanticNote
from hybridgate.cache.sqlite import PRUNE_EVERY, SqliteStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_store_evicts_least_recently_used_and_expires() -> None:
    clock = Clock()
    store = MemoryStore(max_entries=2, max_bytes=10_000, clock=clock)
    await store.put("a", b"A", 60, None)
    await store.put("b", b"B", 60, None)
    assert await store.get("a") == b"A"  # a is now the most recently used
    await store.put("c", b"C", 60, None)
    assert (await store.get("b"), await store.get("a"), await store.get("c")) == (None, b"A", b"C")
    clock.now += 61
    assert await store.get("a") is None and len(store) == 1


async def test_memory_store_keeps_total_bytes_under_its_bound() -> None:
    store = MemoryStore(max_entries=100, max_bytes=250)
    for i in range(5):
        await store.put(str(i), bytes(100), 60, None)
    assert len(store) == 2
    assert await store.get("4") is not None and await store.get("0") is None


async def test_sqlite_store_survives_a_restart_and_expires(tmp_path: Path) -> None:
    path = str(tmp_path / "cache.db")
    store = SqliteStore(path, max_entries=10)
    await store.put("live", b"1", 60, None)
    await store.put("dead", b"2", 0.001, None)
    await store.aclose()
    again = SqliteStore(path, max_entries=10)
    assert await again.get("live") == b"1"
    assert await again.get("dead") is None
    await again.aclose()


async def test_sqlite_store_prunes_to_max_entries(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    store = SqliteStore(str(path), max_entries=5)
    for i in range(PRUNE_EVERY):
        await store.put(f"k{i}", b"v", 60, None)
    await store.aclose()
    with sqlite3.connect(path) as conn:
        keys = [r[0] for r in conn.execute("SELECT key FROM cache_entries ORDER BY seq")]
    assert keys == [f"k{i}" for i in range(PRUNE_EVERY - 5, PRUNE_EVERY)]


async def test_sqlite_notes_reach_another_instance_once(tmp_path: Path) -> None:
    path = str(tmp_path / "cache.db")
    writer, reader = SqliteStore(path, 10), SqliteStore(path, 10)
    note = SemanticNote(key="k1", scope="s", query="what is x", vector=b"\x00\xff")
    await writer.put("k1", b"v", 60, note)
    await writer.put("plain", b"v", 60, None)  # no note: not a semantic entry
    assert await reader.notes_since() == [note]
    assert await reader.notes_since() == []
    await writer.aclose()
    await reader.aclose()
