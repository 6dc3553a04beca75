"""What verifying a virtual key costs on the request path: ``verify`` from the SQLite store and from
the PostgreSQL store, with the 5 s cache warm (the common case) and cold (``cache_ttl_s=0``: every
call reads the database): docs/operations.md.

Offline tool, never imported by the gateway. Prints JSON. PostgreSQL is a throwaway server from
Debian's packages on loopback (tests/postgres_server.py), so a cold PostgreSQL lookup is the
gateway's side plus one loopback round trip; a server across a network adds its round-trip time.

    .venv/bin/python bench/keys_postgres.py --requests 5000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hybridgate.auth.keys import SqliteKeyStore
from hybridgate.auth.pg_keys import PostgresKeyStore
from hybridgate.auth.store import KeyStore
from tests.postgres_server import run_postgres

PEPPER = b"bench-pepper"


async def measure(store: KeyStore, key: str, requests: int, concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []

    async def worker(count: int) -> None:
        for _ in range(count):
            started = time.perf_counter()
            await store.verify(key)
            latencies.append(time.perf_counter() - started)

    await store.verify(key)  # warm: connections open, schema checked
    started = time.perf_counter()
    await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "per_s": round(len(latencies) / elapsed),
        "p50_ms": round(latencies[len(latencies) // 2] * 1e3, 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1e3, 3),
    }


async def run_store(store: KeyStore, requests: int, concurrency: int) -> dict[str, Any]:
    await store.start()
    key, _ = store.create(environment="bench", name="bench")
    try:
        return await measure(store, key, requests, concurrency)
    finally:
        await store.aclose()


async def main(requests: int, concurrency: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, run_postgres() as pg:
        stores: dict[str, KeyStore] = {
            "sqlite_cached": SqliteKeyStore(Path(tmp) / "a.db", PEPPER),
            "sqlite_uncached": SqliteKeyStore(Path(tmp) / "b.db", PEPPER, cache_ttl_s=0),
            "postgres_cached": PostgresKeyStore(pg.dsn, PEPPER),
            "postgres_uncached": PostgresKeyStore(pg.dsn, PEPPER, cache_ttl_s=0),
        }
        for name, store in stores.items():
            results[name] = await run_store(store, requests, concurrency)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.requests, args.concurrency)), indent=2))
