"""Two gateway replicas share rate limits and budgets through one real Redis.

Two real ``python -m hybridgate serve`` processes (tests/gateway_process.py) share one keys file
and one redis-server (tests/redis_server.py, Debian's binary on a loopback port), each with its
own ledger, as replicas behind a load balancer would. The upstream is the OpenAI stand-in from
tests/standins (a test server, not OpenAI); clients are the official ``openai`` SDK.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from hybridgate.auth.keys import SqliteKeyStore
from hybridgate.config import GatewayConfig
from tests.gateway_process import GatewayProcess, run_gateway
from tests.redis_server import RedisServer, running_redis
from tests.standins.openai_upstream import run_openai_standin
from tests.waiting import wait_until

PEPPER = "replica-pepper-0123456789"
# $1000 per million tokens: an echo of "hi" costs about half a cent, the exact figure is in the ledger.
PRICE = "price = { input_per_mtok = 1000, output_per_mtok = 1000 }"


def replica_config(upstream: str, redis: str, keys: Path, ledger: Path) -> str:
    return f"""environment = "test"
[ledger]
path = "{ledger}"
flush_interval_s = 0.05
[auth]
enabled = true
keys_path = "{keys}"
limits_store = "redis"
[redis]
url = "{redis}"
key_prefix = "replicas-test:"
timeout_s = 2.0
[backends.up]
type = "openai_compat"
base_url = "{upstream}"
model = "gpt-4o-mini"
api_key_env = "UP_KEY"
{PRICE}
[routes.auto]
try = ["up"]
"""


@dataclass
class Replicas:
    gateways: list[GatewayProcess]
    ledgers: list[Path]
    keys: SqliteKeyStore
    redis: RedisServer

    def ask(self, replica: int, key: str) -> openai.types.chat.ChatCompletion | openai.APIStatusError:
        url = f"{self.gateways[replica % 2].url}/v1"
        with openai.OpenAI(base_url=url, api_key=key, max_retries=0) as client:
            try:
                return client.chat.completions.create(
                    model="auto", messages=[{"role": "user", "content": "hi"}]
                )
            except openai.APIStatusError as exc:
                return exc

    def health(self, replica: int) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.gateways[replica].url}/healthz", timeout=5).json()
        return body

    def spent(self, key_id: str) -> list[float]:
        """The cost of each successful request of the key, from both replicas' ledgers."""
        costs: list[float] = []
        for ledger in self.ledgers:
            with closing(sqlite3.connect(ledger)) as conn:
                query = "SELECT cost_usd FROM requests WHERE api_key_id = ? AND status = 200"
                costs += [float(row[0]) for row in conn.execute(query, (key_id,))]
        return costs


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[Replicas]:
    keys_path = tmp_path / "keys.db"
    keys = SqliteKeyStore(keys_path, PEPPER.encode())
    with ExitStack() as stack:
        upstream = stack.enter_context(run_openai_standin(api_key="sk-up"))
        redis = stack.enter_context(running_redis())
        gateways, ledgers = [], []
        for name in ("a", "b"):
            workdir = tmp_path / name
            workdir.mkdir()
            ledgers.append(workdir / "ledger.db")
            config = replica_config(upstream.base_url, redis.url, keys_path, ledgers[-1])
            env = {"HYBRIDGATE_KEY_PEPPER": PEPPER}
            gateways.append(stack.enter_context(run_gateway(config, workdir, env=env)))
        yield Replicas(gateways, ledgers, keys, redis)


def statuses(results: list[Any]) -> list[int]:
    return [200 if isinstance(r, openai.types.chat.ChatCompletion) else r.status_code for r in results]


def test_n_requests_per_minute_across_both_replicas(replicas: Replicas) -> None:
    key, _ = replicas.keys.create(environment="test", name="shared", rpm=10)
    with ThreadPoolExecutor(8) as pool:  # concurrent, alternating between the replicas
        results = list(pool.map(lambda i: replicas.ask(i, key), range(30)))
    assert statuses(results).count(200) == 10 and statuses(results).count(429) == 20
    refused = next(r for r in results if isinstance(r, openai.RateLimitError))
    assert isinstance(refused.body, dict) and refused.body["code"] == "rate_limit_exceeded"
    assert "10 requests per minute" in refused.body["message"]
    assert int(refused.response.headers["retry-after"]) >= 1


def test_day_budget_stops_spending_across_replicas_within_one_request(replicas: Replicas) -> None:
    probe, probed = replicas.keys.create(environment="test", name="probe")
    assert isinstance(replicas.ask(0, probe), openai.types.chat.ChatCompletion)
    wait_until(lambda: replicas.spent(probed.key_id), 30, "the probe's ledger row")  # flushed every 0.05 s
    [cost] = replicas.spent(probed.key_id)
    assert cost > 0
    budget = cost * 5.5  # six requests' worth, the sixth crossing it
    key, record = replicas.keys.create(environment="test", name="budget", budget_usd_day=budget)
    results = [replicas.ask(i, key) for i in range(12)]  # one after another, alternating
    assert statuses(results) == [200] * 6 + [429] * 6
    refused = results[-1]
    assert isinstance(refused, openai.RateLimitError) and isinstance(refused.body, dict)
    assert refused.body["code"] == "insufficient_quota" and "daily budget" in refused.body["message"]
    for gateway in replicas.gateways:
        gateway.terminate()
        gateway.wait(30)
    spent = sum(replicas.spent(record.key_id))
    assert budget <= spent < budget + cost


def test_redis_killed_mid_load_limits_turn_local_then_shared_again(replicas: Replicas) -> None:
    busy, _ = replicas.keys.create(environment="test", name="busy", rpm=10_000)
    small, _ = replicas.keys.create(environment="test", name="small", rpm=3)
    results: list[Any] = []
    stop = threading.Event()

    def load() -> None:
        i = 0
        while not stop.is_set():
            results.append(replicas.ask(i, busy))
            i += 1

    worker = threading.Thread(target=load)
    worker.start()
    try:
        wait_until(lambda: len(results) >= 10, 30, "requests before the outage")
        assert statuses([replicas.ask(i, small) for i in range(4)]) == [200, 200, 200, 429]  # shared: 3
        replicas.redis.stop()
        before = len(results)
        wait_until(lambda: len(results) >= before + 20, 30, "requests during the outage")
        # Each replica now counts alone: 3 more per replica for the small key.
        assert statuses([replicas.ask(0, small) for _ in range(4)]) == [200, 200, 200, 429]
        assert statuses([replicas.ask(1, small) for _ in range(4)]) == [200, 200, 200, 429]
        for replica in (0, 1):
            health = replicas.health(replica)
            assert health["status"] == "degraded" and "redis unreachable" in health["degraded"]["limits"]
        replicas.redis.start()
        during = len(results)
        wait_until(lambda: all(replicas.health(r)["status"] == "ok" for r in (0, 1)), 30, "recovery")
        wait_until(lambda: len(results) >= during + 20, 30, "requests after the recovery")
        # Shared again (and the restarted Redis has forgotten the minute): 3 across both replicas.
        assert statuses([replicas.ask(i, small) for i in range(4)]) == [200, 200, 200, 429]
    finally:
        stop.set()
        worker.join(timeout=60)
    assert set(statuses(results)) == {200}, "a request failed while Redis was down or came back"
    for gateway in replicas.gateways:
        assert gateway.output().count("rate limits fall back to this process") == 1




def test_a_redis_limits_store_needs_a_redis_section() -> None:
    base = {"backends": {"b": {"type": "openai_compat", "base_url": "http://x", "model": "m"}}}
    config = {**base, "routes": {"auto": {"try": ["b"]}}, "auth": {"limits_store": "redis"}}
    with pytest.raises(ValueError, match=r"limits_store = \"redis\" needs a \[redis\] section"):
        GatewayConfig.model_validate(config)
    assert GatewayConfig.model_validate({**config, "redis": {}}).auth.limits_store == "redis"
