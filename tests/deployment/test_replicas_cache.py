"""Two gateway replicas share one response cache through a real Redis.

Two real ``python -m hybridgate serve`` processes (tests/gateway_process.py) point at one
redis-server (tests/redis_server.py: Debian's binary on a loopback port). The upstream is the
OpenAI stand-in from tests/standins (a test server, not OpenAI), which counts the requests it is
sent; clients are the official ``openai`` SDK.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import openai
import pytest
from redis import Redis

from tests.gateway_process import GatewayProcess, run_gateway
from tests.redis_server import RedisServer, running_redis
from tests.standins.openai_upstream import OpenAIStandIn, run_openai_standin
from tests.waiting import wait_until


def replica_config(upstream: str, redis: str, ledger: Path) -> str:
    return f"""environment = "test"
[ledger]
path = "{ledger}"
flush_interval_s = 0.05
[cache]
store = "redis"
semantic_routes = ["auto"]
semantic_threshold = 0.9
[redis]
url = "{redis}"
key_prefix = "cache-test:"
timeout_s = 0.5
[backends.up]
type = "openai_compat"
base_url = "{upstream}"
model = "gpt-4o-mini"
api_key_env = "UP_KEY"
[routes.auto]
try = ["up"]
"""


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[OpenAIStandIn, RedisServer, list[GatewayProcess]]]:
    with ExitStack() as stack:
        upstream = stack.enter_context(run_openai_standin(api_key="sk-up"))
        redis = stack.enter_context(running_redis())
        replicas = []
        for name in ("a", "b"):
            workdir = tmp_path_factory.mktemp(f"replica-{name}")
            config = replica_config(upstream.base_url, redis.url, workdir / "ledger.db")
            replicas.append(stack.enter_context(run_gateway(config, workdir)))
        yield upstream, redis, replicas


def ask(replica: GatewayProcess, question: str, key: str = "caller") -> str | None:
    with openai.OpenAI(base_url=f"{replica.url}/v1", api_key=key, max_retries=0) as oai:
        raw = oai.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": question}], temperature=0
        )
    assert raw.parse().choices[0].message.content
    return raw.headers.get("x-hybridgate-cache")


def test_an_answer_cached_by_one_replica_is_a_hit_on_the_other(
    cluster: tuple[OpenAIStandIn, RedisServer, list[GatewayProcess]],
) -> None:
    upstream, redis, (a, b) = cluster
    before, entries = len(upstream.requests), _entries(redis)
    assert ask(a, "shared across replicas?") == "miss"
    _wait_for_write(redis, entries + 1)
    assert ask(b, "shared across replicas?") == "hit"
    assert len(upstream.requests) - before == 1  # b never asked the upstream
    assert ask(b, "shared across replicas?", key="someone-else") == "miss"  # another tenant
    assert len(upstream.requests) - before == 2


def test_a_reworded_question_asked_on_one_replica_is_a_semantic_hit_on_the_other(
    cluster: tuple[OpenAIStandIn, RedisServer, list[GatewayProcess]],
) -> None:
    upstream, redis, (a, b) = cluster
    before, entries = len(upstream.requests), _entries(redis)
    assert ask(a, "How do I cancel my subscription?") == "miss"
    _wait_for_write(redis, entries + 1)
    time.sleep(1.0)  # b indexes other replicas' questions every 0.2 s (cache/neighbours.py)
    assert ask(b, "How can I cancel my subscription?") == "semantic-hit"
    assert len(upstream.requests) - before == 1


def test_redis_down_means_misses_not_failures_then_hits_again(
    cluster: tuple[OpenAIStandIn, RedisServer, list[GatewayProcess]],
) -> None:
    _, redis, (a, b) = cluster
    redis.stop()
    try:
        assert [ask(a, "during the outage"), ask(a, "during the outage")] == ["miss", "miss"]
        health = httpx.get(f"{a.url}/healthz").json()
        assert health["status"] == "degraded" and "cache" in health["degraded"]
    finally:
        redis.start()  # empty again: the test server keeps nothing on disk
    assert ask(a, "after the outage") == "miss"
    _wait_for_write(redis, 1)
    assert ask(b, "after the outage") == "hit"
    assert httpx.get(f"{a.url}/healthz").json()["status"] == "ok"


def _entries(redis: RedisServer) -> int:
    with Redis.from_url(redis.url) as client:
        return sum(1 for _ in client.scan_iter(match="cache-test:cache:*"))


def _wait_for_write(redis: RedisServer, entries: int) -> None:
    """A replica stores its answer just after sending it: wait until the entry is in Redis."""
    wait_until(lambda: _entries(redis) >= entries, 10, "the replica to write its answer to Redis")
