"""The memory, SQLite and Redis stores: bounds, expiry, persistence, semantic notes, batches."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from hybridgate.cache.memory import CacheStore, MemoryStore, SemanticNote
from hybridgate.cache.sqlite import PRUNE_EVERY, SqliteStore
from tests.redis_server import RedisServer


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


async def _many_round_trip(store: CacheStore) -> None:
    await store.put_many([("a", b"1"), ("b", b"22"), ("c", b"333")], ttl_s=60)
    await store.put_many([("gone", b"x")], ttl_s=0.001)
    time.sleep(0.01)
    assert await store.get_many(["c", "missing", "a", "gone", "b"]) == [b"333", None, b"1", None, b"22"]
    assert await store.get_many([]) == []
    await store.aclose()


async def test_memory_store_gets_and_puts_many() -> None:
    await _many_round_trip(MemoryStore(10, 10_000))


async def test_sqlite_store_gets_and_puts_many_past_one_query(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "c.db"), 5000)
    await store.put_many([(f"k{i}", str(i).encode()) for i in range(1200)], ttl_s=60)
    keys = [f"k{i}" for i in range(1199, -1, -1)]  # more keys than one IN (...) holds, reversed
    assert await store.get_many(keys) == [str(i).encode() for i in range(1199, -1, -1)]
    await _many_round_trip(store)


async def test_redis_store_gets_and_puts_many(redis: RedisServer) -> None:
    from redis.asyncio import Redis

    from hybridgate.cache.redis import RedisStore

    await _many_round_trip(RedisStore(Redis.from_url(redis.url), "t:", 100))  # aclose closes it
