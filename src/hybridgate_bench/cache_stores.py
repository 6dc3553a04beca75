"""Lookup latency of the whole cache, store by store, with 100,000 entries.

A lookup here is what the pipeline pays on a semantic route: ``ResponseCache.get`` with the
exact key missing, then the embedding of the question, the notes other replicas wrote, the
nearest-neighbour search, the guards, and the read of the matched entry from the store. Every
store holds the same entries and the same in-memory index; only the store differs. The Redis
store is measured when a server URL is given (`hybridgate bench cache --redis-url ...`).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hybridgate.cache.entry import CachedAnswer
from hybridgate.cache.keys import CacheKeys
from hybridgate.cache.memory import CacheStore, MemoryStore
from hybridgate.cache.response_cache import Lookup, ResponseCache
from hybridgate.cache.semantic import SemanticMatcher
from hybridgate.cache.sqlite import SqliteStore
from hybridgate.cache.vectors import VectorIndex
from hybridgate.config import CacheConfig, RedisConfig

SCOPE = "bench-scope"
ANSWER = CachedAnswer(
    body={
        "object": "chat.completion",
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "An answer."}, "finish_reason": "stop"}
        ],
    },
    backend="b",
    model="m",
    cost_usd=0.001,
    created_at=0.0,
).to_bytes()


def store_latency(
    matcher: SemanticMatcher,
    vectors: NDArray[np.float32],
    texts: list[str],
    entries: int,
    queries: int,
    redis_url: str | None,
) -> dict[str, dict[str, float]]:
    """``{"lookup_p50_ms": {store: ms}, "lookup_p99_ms": {...}, "hit_rate": {...}}``."""
    return asyncio.run(_all_stores(matcher, vectors, texts, entries, queries, redis_url))


async def _all_stores(
    matcher: SemanticMatcher,
    vectors: NDArray[np.float32],
    texts: list[str],
    entries: int,
    queries: int,
    redis_url: str | None,
) -> dict[str, dict[str, float]]:
    index = VectorIndex(max_entries=entries, dim=vectors.shape[1])
    for row in range(entries):
        index.add(SCOPE, f"k{row}", vectors[row], texts[row])
    report: dict[str, dict[str, float]] = {"lookup_p50_ms": {}, "lookup_p99_ms": {}, "hit_rate": {}}
    with tempfile.TemporaryDirectory() as tmp:
        stores: list[CacheStore] = [
            MemoryStore(entries, 1 << 34),
            SqliteStore(str(Path(tmp) / "c.db"), entries),
        ]
        if redis_url:
            from hybridgate.cache.redis import RedisStore
            from hybridgate.stores.redis import redis_client

            client = redis_client(
                RedisConfig(url=redis_url, key_prefix="hybridgate-bench:", timeout_s=2.0), {}
            )
            stores.append(RedisStore(client, "hybridgate-bench:", entries))
        for store in stores:
            await _fill(store, entries)
            cache = ResponseCache(CacheConfig(max_entries=entries), store, matcher, index)
            times, hits = await _time_lookups(cache, texts, entries, queries)
            report["lookup_p50_ms"][store.name] = _ms(times, 50)
            report["lookup_p99_ms"][store.name] = _ms(times, 99)
            report["hit_rate"][store.name] = round(hits / queries, 3)
            await store.aclose()
    return report


async def _fill(store: CacheStore, entries: int) -> None:
    items = [(f"k{row}", ANSWER) for row in range(entries)]
    if isinstance(store, SqliteStore):
        await store.put_many(items, 3600)
        return
    for start in range(0, entries, 1000):
        await asyncio.gather(
            *(store.put(key, value, 3600, None) for key, value in items[start : start + 1000])
        )


async def _time_lookups(
    cache: ResponseCache, texts: list[str], entries: int, queries: int
) -> tuple[list[float], int]:
    """Each query is a stored question with a few words added: near, so it should hit."""
    times: list[float] = []
    hits = 0
    for n in range(queries):
        question = f"{texts[(n * 7919) % entries]} Thanks"
        lookup = Lookup(CacheKeys(f"miss-{n}", SCOPE, question, "tenant"), read=True, semantic=True)
        start = time.perf_counter()
        hit = await cache.get(lookup)
        times.append(time.perf_counter() - start)
        hits += hit is not None
    return times, hits


def _ms(samples: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(samples) * 1000.0, q)), 3)


def describe(report: dict[str, Any]) -> str:
    return ", ".join(
        f"{store} p50 {report['lookup_p50_ms'][store]} ms p99 {p99} ms"
        for store, p99 in report["lookup_p99_ms"].items()
    )
