"""What a request's limit bookkeeping costs: ``check`` + ``headers`` + ``charge`` per request,
in-process (``MemoryLimiter``) and shared through Redis (``RedisLimiter``): docs/operations.md.

Offline tool, never imported by the gateway. Prints JSON. Redis is a throwaway redis-server from
Debian's package on loopback (tests/redis_server.py), so the numbers are the gateway's side plus
one loopback round trip per call; a Redis across a network adds its round-trip time three times.
The key has every limit set (rpm, tpm, a day budget) so every script path runs; the limits are
high enough that nothing is refused.

    .venv/bin/python bench/limits_redis.py --requests 5000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hybridgate.auth.limits import Limiter, MemoryLimiter
from hybridgate.auth.records import KeyRecord
from hybridgate.auth.redis_limits import RedisLimiter
from hybridgate.config import RedisConfig
from hybridgate.stores.redis import redis_client
from tests.redis_server import running_redis

KEY = KeyRecord(
    key_id="bench123", name="bench", environment="bench", created_at=0.0,
    rpm=10**9, tpm=10**9, budget_usd_day=1e9,
)  # fmt: skip


async def one_request(limiter: Limiter) -> float:
    started = time.perf_counter()
    await limiter.check(KEY)
    await limiter.headers(KEY)
    await limiter.charge(KEY.key_id, 1e-6, 10)
    return time.perf_counter() - started


async def measure(limiter: Limiter, requests: int, concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []

    async def worker(count: int) -> None:
        for _ in range(count):
            latencies.append(await one_request(limiter))

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


async def run(url: str, requests: int) -> dict[str, Any]:
    redis = RedisLimiter(redis_client(RedisConfig(url=url, timeout_s=5.0), {}), key_prefix="bench:")
    try:
        return {
            "memory": await measure(MemoryLimiter(), requests, 1),
            "redis": await measure(redis, requests, 1),
            "redis_concurrent": await measure(redis, requests, 16),
            "degraded": redis.degraded_reason(),
        }
    finally:
        await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args()
    with running_redis() as server:
        print(json.dumps(asyncio.run(run(server.url, args.requests)), indent=2))


if __name__ == "__main__":
    main()
