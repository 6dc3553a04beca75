"""Embeddings benchmark: ``python -m bench.embeddings --json`` from the repo root prints JSON.

Offline tool, never imported by the gateway. Four measurements, each with its comparison from the
same run:

1. ``embedder``: texts/s of the embedded WordLlama embedder at batch 1 and batch 64.
2. ``proxy``: latency the gateway adds in front of an OpenAI-compatible embeddings stand-in
   (tests/standins/openai_embeddings.py, not OpenAI), one text per request, cache bypassed:
   the same requests sent straight to the stand-in and through the gateway, interleaved.
3. ``lookup``: per-text cache lookups (``VectorCache.get_many``, 1 and 64 texts) with N cached
   vectors in each store: memory, SQLite, and a real redis-server started here on loopback.
4. ``reembed``: a corpus embedded through the gateway, then re-embedded unchanged: upstream calls
   and USD (from the gateway's ``x-hybridgate-cost-usd``) of each pass.

Texts are questions from ``../shared/data/cache/qqp_pairs.jsonl.gz`` when present (read, never
copied), else generated sentences. Everything binds to 127.0.0.1; every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from hybridgate.app import create_app
from hybridgate.backends.embeddings import WordLlamaEmbedder
from hybridgate.cache.embeddings import VectorCache, to_entry, vector_key
from hybridgate.cache.memory import CacheStore, MemoryStore
from hybridgate.config import GatewayConfig, WordLlamaEmbedderConfig
from tests.redis_server import running_redis
from tests.servers import serve_in_thread
from tests.standins.openai_embeddings import run_embeddings_standin

QQP = Path(__file__).resolve().parents[2] / "shared" / "data" / "cache" / "qqp_pairs.jsonl.gz"
DIM = 256  # WordLlama's: what a cached vector of the default embedder weighs


def corpus(n: int, seed: int = 7) -> list[str]:
    """``n`` distinct texts: QQP questions if the shared data is there, else generated ones."""
    texts: list[str] = []
    if QQP.exists():
        with gzip.open(QQP, "rt") as lines:
            for line in lines:
                pair = json.loads(line)
                texts += [pair["text_a"], pair["text_b"]]
                if len(texts) >= 2 * n:
                    break
    words = ["alpha", "beta", "gamma", "delta", "invoice", "refund", "policy", "shipment", "quarter"]
    rng = random.Random(seed)
    while len(texts) < n:
        texts.append(" ".join(rng.choice(words) for _ in range(rng.randint(5, 30))))
    return list(dict.fromkeys(texts))[:n]


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    return {
        "p50_ms": round(statistics.median(ordered), 4),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 4),
        "n": len(ordered),
    }


def bench_embedder(texts: list[str], rounds: int) -> dict[str, Any]:
    embedder = WordLlamaEmbedder("wl", WordLlamaEmbedderConfig(type="wordllama"))
    embedder.embed_now(texts[:4], None)  # load the weights outside the clock
    out: dict[str, Any] = {}
    for batch in (1, 64):
        rates = []
        for r in range(rounds):
            chunk = texts[(r * batch) % len(texts) :][:batch] or texts[:batch]
            started = time.perf_counter()
            embedder.embed_now(chunk, None)
            rates.append(len(chunk) / (time.perf_counter() - started))
        out[f"batch_{batch}_texts_per_s"] = round(statistics.median(rates), 1)
    return out


def gateway_config(upstream: str, ledger: Path, cache: bool) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "ledger": {"path": str(ledger)},
            "backends": {"local": {"type": "embedded"}},
            "routes": {"auto": {"try": ["local"]}},
            "cache": {"store": "memory"} if cache else None,
            "embeddings": {
                "backends": {
                    "up": {
                        "type": "openai_compat",
                        "base_url": upstream,
                        "model": "text-embedding-3-small",
                        "provider": "openai",
                        "max_batch": 256,
                    }
                },
                "routes": {"up": {"try": ["up"]}},
                "default_route": "up",
                "cache_max_entries": 200_000,
            },
        }
    )


def bench_proxy(texts: list[str], requests: int, tmp: Path) -> dict[str, Any]:
    with run_embeddings_standin(dim=1536) as upstream:
        app = create_app(gateway_config(upstream.base_url, tmp / "proxy.db", cache=False), env={})
        with serve_in_thread(app) as url, httpx.Client(timeout=10) as client:
            direct: list[float] = []
            proxied: list[float] = []
            for i in range(requests + 20):
                body = {"model": "text-embedding-3-small", "input": texts[i % len(texts)]}
                for target, samples in ((upstream.base_url, direct), (f"{url}/v1", proxied)):
                    started = time.perf_counter()
                    response = client.post(f"{target}/embeddings", json=body)
                    elapsed = (time.perf_counter() - started) * 1000
                    assert response.status_code == 200, response.text
                    if i >= 20:  # warm-up requests are not counted
                        samples.append(elapsed)
            upstream.requests.clear()
    d, p = percentiles(direct), percentiles(proxied)
    return {
        "direct": d,
        "through_gateway": p,
        "added_p50_ms": round(p["p50_ms"] - d["p50_ms"], 4),
        "added_p99_ms": round(p["p99_ms"] - d["p99_ms"], 4),
        "upstream_dimensions": 1536,
    }


async def fill(store: CacheStore, entries: int, vector: bytes) -> list[str]:
    keys = [vector_key("bench/anonymous", "m", None, f"t:{i}") for i in range(entries)]
    for start in range(0, entries, 5000):
        await store.put_many([(k, vector) for k in keys[start : start + 5000]], 86_400.0)
    return keys


async def bench_lookup(store: CacheStore, entries: int, lookups: int) -> dict[str, Any]:
    vector = to_entry(np.random.default_rng(1).standard_normal(DIM).astype(np.float32), 12)
    started = time.perf_counter()
    keys = await fill(store, entries, vector)
    fill_s = time.perf_counter() - started
    cache = VectorCache(store, 86_400.0, timeout_s=5.0)
    rng = random.Random(3)
    out: dict[str, Any] = {"entries": entries, "fill_s": round(fill_s, 1)}
    for batch in (1, 64):
        samples = []
        for _ in range(lookups):
            wanted = rng.sample(keys, batch)
            t0 = time.perf_counter()
            found = await cache.get_many(wanted)
            samples.append((time.perf_counter() - t0) * 1000)
            assert all(f is not None for f in found), "a cached vector was missing"
        out[f"get_{batch}"] = percentiles(samples)
    await store.aclose()
    return out


def stores(entries: int, tmp: Path) -> Iterator[tuple[str, Callable[[], CacheStore]]]:
    from hybridgate.cache.sqlite import SqliteStore

    yield "memory", lambda: MemoryStore(entries + 1, 4 * 1024**3)
    yield "sqlite", lambda: SqliteStore(str(tmp / "lookup.db"), entries + 1)


def bench_lookups(entries: int, lookups: int, tmp: Path, only: set[str]) -> dict[str, Any]:
    from hybridgate.cache.postgres import PostgresStore
    from hybridgate.cache.redis import RedisStore
    from hybridgate.config import RedisConfig
    from hybridgate.stores.redis import redis_client
    from tests.postgres_server import new_database, run_postgres

    results = {
        name: asyncio.run(bench_lookup(make(), entries, lookups))
        for name, make in stores(entries, tmp)
        if name in only
    }

    async def in_redis(url: str) -> dict[str, Any]:  # the gateway's own client and pool settings
        client = redis_client(RedisConfig(url=url, timeout_s=5.0), {})
        return await bench_lookup(RedisStore(client, "bench:", entries + 1), entries, lookups)

    if "redis" in only:
        with running_redis() as server:
            results["redis"] = asyncio.run(in_redis(server.url))
    if "postgres" in only:
        with run_postgres() as pg:
            store = PostgresStore(new_database(pg), password=None, timeout_s=5.0, pool_size=4)
            results["postgres"] = asyncio.run(bench_lookup(store, entries, lookups))
    return results


def bench_reembed(texts: list[str], per_request: int, tmp: Path) -> dict[str, Any]:
    with run_embeddings_standin(dim=1536) as upstream:
        app = create_app(gateway_config(upstream.base_url, tmp / "reembed.db", cache=True), env={})
        with serve_in_thread(app) as url, httpx.Client(timeout=60) as client:
            passes = []
            for _ in range(2):
                calls_before, usd = len(upstream.requests), 0.0
                started = time.perf_counter()
                for start in range(0, len(texts), per_request):
                    body = {"model": "text-embedding-3-small", "input": texts[start : start + per_request]}
                    response = client.post(f"{url}/v1/embeddings", json=body)
                    assert response.status_code == 200, response.text
                    usd += float(response.headers["x-hybridgate-cost-usd"])
                passes.append(
                    {
                        "upstream_calls": len(upstream.requests) - calls_before,
                        "usd": round(usd, 6),
                        "seconds": round(time.perf_counter() - started, 2),
                    }
                )
                cache = app.state.gateway.embeddings.cache
                deadline = time.monotonic() + 30
                while cache.writes_in_flight and time.monotonic() < deadline:  # writes land off the path
                    time.sleep(0.01)
    return {"chunks": len(texts), "per_request": per_request, "first": passes[0], "second": passes[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON (the only output)")
    parser.add_argument("--entries", type=int, default=1_000_000, help="cached vectors per store")
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=1000, help="proxied-latency requests")
    parser.add_argument("--corpus", type=int, default=10_000, help="chunks in the re-embed corpus")
    parser.add_argument("--stores", default="memory,sqlite,redis,postgres", help="stores for the lookups")
    parser.add_argument(
        "--only-lookups", action="store_true", help="skip the embedder, proxy and re-embed runs"
    )
    args = parser.parse_args()
    texts = corpus(max(args.corpus, 2000))
    with tempfile.TemporaryDirectory(prefix="hgbench-emb-") as tmp:
        result: dict[str, Any] = {
            "machine": {"cpus": os.cpu_count(), "load_1m": round(os.getloadavg()[0], 2)}
        }
        if not args.only_lookups:
            result["embedder"] = bench_embedder(texts, rounds=200)
            result["proxy"] = bench_proxy(texts, args.requests, Path(tmp))
            result["reembed"] = bench_reembed(texts[: args.corpus], 100, Path(tmp))
        stores_wanted = set(args.stores.split(","))
        result["lookup"] = bench_lookups(args.entries, args.lookups, Path(tmp), stores_wanted)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
