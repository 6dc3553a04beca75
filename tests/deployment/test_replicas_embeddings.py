"""Two gateway replicas share the embeddings cache through one real Redis, or one real PostgreSQL.

Stand-ins: the embedder is an OpenAI-compatible embeddings stand-in server on loopback
(tests/standins/openai_embeddings.py), not OpenAI. Redis is a real redis-server started by the
test, and so is PostgreSQL (tests/postgres_server.py). The two replicas are two instances of the
real app, each served by uvicorn on its own port.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from redis import Redis

from hybridgate.app import create_app
from hybridgate.config import GatewayConfig
from hybridgate.errors import StoreUnavailableError
from tests.redis_server import RedisServer, running_redis
from tests.servers import serve_in_thread
from tests.standins.openai_embeddings import EmbeddingsStandIn, run_embeddings_standin
from tests.waiting import wait_until


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


def replica_config(
    tmp: Path, name: str, redis_url: str, embedder: str, shared: dict[str, Any] | None = None
) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "ledger": {"path": str(tmp / f"{name}.db")},
            "backends": {"local": {"type": "embedded"}},
            "routes": {"auto": {"try": ["local"]}},
            "redis": {"url": redis_url},
            "cache": {"store": "redis"},
            **(shared or {}),
            "embeddings": {
                "backends": {
                    "cloud": {
                        "type": "openai_compat",
                        "base_url": embedder,
                        "model": "text-embedding-3-small",
                    }
                },
                "routes": {"cloud": {"try": ["cloud"]}},
                "default_route": "cloud",
                **({"cache_store": "postgres"} if shared else {}),
            },
        }
    )


def test_a_text_embedded_by_one_replica_is_a_hit_on_the_other(redis: RedisServer, tmp_path: Path) -> None:
    with run_embeddings_standin() as upstream:
        a = create_app(replica_config(tmp_path, "a", redis.url, upstream.base_url), env={})
        b = create_app(replica_config(tmp_path, "b", redis.url, upstream.base_url), env={})
        with serve_in_thread(a) as url_a, serve_in_thread(b) as url_b:
            texts = ["shared corpus chunk one", "shared corpus chunk two"]
            first = _embed(url_a, texts)
            assert len(upstream.requests) == 1
            _wait_for_entries(redis, 2)
            with _client(url_b) as client:
                raw = client.embeddings.with_raw_response.create(model="cloud", input=texts)
            assert raw.headers["x-hybridgate-cache"] == "hit" and len(upstream.requests) == 1
            for x, y in zip(first, raw.parse().data, strict=True):
                assert (
                    np.asarray(x.embedding, np.float32).tobytes()
                    == np.asarray(y.embedding, np.float32).tobytes()
                )
            # Redis gone: the other replica still answers, as misses, and says so in /healthz.
            redis.stop()
            _embed(url_b, ["after the outage"])
            assert _upstream_texts(upstream)[-1] == "after the outage"
            health = httpx.get(f"{url_b}/healthz").json()
            assert "embeddings cache (redis) failed on read" in health["degraded"]["embeddings_cache"]


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


def _embed(url: str, texts: list[str]) -> list[openai.types.Embedding]:
    with _client(url) as client:
        return client.embeddings.create(model="cloud", input=texts).data


def _upstream_texts(upstream: EmbeddingsStandIn) -> list[str]:
    return [str(t) for t in upstream.texts_received()]


def _wait_for_entries(redis: RedisServer, count: int, timeout_s: float = 10.0) -> None:
    """Cache writes happen off the response path: wait until Redis holds them, not for a clock."""
    with Redis.from_url(redis.url) as client:
        wait_until(
            lambda: len(client.keys("hybridgate:cache:emb:*")) >= count,
            timeout_s,
            "replica A's cache writes to reach Redis",
        )


def test_replicas_share_vectors_through_postgresql(tmp_path: Path, postgres_dsn: str) -> None:
    with run_embeddings_standin() as upstream:
        shared = {"postgres": {"dsn": postgres_dsn, "timeout_s": 5.0}, "cache": None}
        a = create_app(
            replica_config(tmp_path, "a", "redis://127.0.0.1:1/0", upstream.base_url, shared), env={}
        )
        b = create_app(
            replica_config(tmp_path, "b", "redis://127.0.0.1:1/0", upstream.base_url, shared), env={}
        )
        with serve_in_thread(a) as url_a, serve_in_thread(b) as url_b:
            texts = ["a chunk kept in postgres", "another one"]
            first = _embed(url_a, texts)
            cache = a.state.gateway.embeddings.cache  # written off the response path:
            wait_until(lambda: not cache.writes_in_flight, 10, "replica A's writes to PostgreSQL")
            with _client(url_b) as client:
                raw = client.embeddings.with_raw_response.create(model="cloud", input=texts)
            assert raw.headers["x-hybridgate-cache"] == "hit" and len(upstream.requests) == 1
            for x, y in zip(first, raw.parse().data, strict=True):
                assert (
                    np.asarray(x.embedding, np.float32).tobytes()
                    == np.asarray(y.embedding, np.float32).tobytes()
                )


def test_postgres_store_round_trip(postgres_dsn: str) -> None:
    from hybridgate.cache.postgres import PostgresStore

    async def round_trip(dsn: str) -> None:
        store = PostgresStore(dsn, password=None, timeout_s=5.0, pool_size=2)
        await store.put_many([("a", b"1"), ("b", b"22")], ttl_s=60)
        await store.put("gone", b"x", 0.001, None)
        await store.put("a", b"111", 60, None)  # a rewrite replaces the value
        await asyncio.sleep(0.01)
        assert await store.get_many(["b", "missing", "a", "gone"]) == [b"22", None, b"111", None]
        assert await store.get("b") == b"22" and await store.notes_since() == []
        await store.aclose()
        down = PostgresStore(
            "postgresql://nobody@127.0.0.1:1/none", password=None, timeout_s=1.0, pool_size=1
        )
        with pytest.raises(StoreUnavailableError):
            await down.get("a")

    asyncio.run(round_trip(postgres_dsn))
