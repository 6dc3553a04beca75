"""A hung Redis costs one timeout per second, not one per request, and looks like a dead one.

Real parts: the gateway app on a loopback port (uvicorn in a thread), the official openai SDK as
the caller, a real redis-server (Debian's, tests/redis_server.py) for recovery. The "hung Redis"
of the first test is tests/hung_server.py, a stand-in: a loopback listener that accepts
connections and reads commands but never answers, as a stuck Redis process does. The upstream is
the OpenAI stand-in from tests/standins (a test server on loopback, not OpenAI).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from hybridgate.app import create_app
from hybridgate.auth.keys import SqliteKeyStore
from hybridgate.config import GatewayConfig
from hybridgate.stores.redis import RedisCircuit
from tests.hung_server import hung_server
from tests.redis_server import running_redis
from tests.servers import serve_in_thread
from tests.standins.openai_upstream import OpenAIStandIn, run_openai_standin

PEPPER = "redis-client-test-pepper-0123456789"
ENV = {"HYBRIDGATE_KEY_PEPPER": PEPPER, "UP_KEY": "sk-up"}
RETRY_S = 1.0  # redis_client.RETRY_S: how often an open circuit lets one probe through
REDIS_COMMAND = re.compile(rb"(?:^|\r\n)\*\d+\r\n")  # a RESP array: one command sent


@pytest.fixture
def upstream() -> Iterator[OpenAIStandIn]:
    with run_openai_standin(api_key="sk-up") as up:
        yield up


def config(upstream: OpenAIStandIn, redis_url: str, tmp_path: Path) -> GatewayConfig:
    """Cache and rate limits both in Redis, keys in a local SQLite file."""
    backend = {"type": "openai_compat", "base_url": upstream.base_url, "model": "m", "api_key_env": "UP_KEY"}
    return GatewayConfig.model_validate(
        {
            "environment": "prod",
            "ledger": {"path": str(tmp_path / "ledger.db")},
            "backends": {"up": backend},
            "routes": {"auto": {"try": ["up"]}},
            "cache": {"store": "redis"},
            "redis": {"url": redis_url},
            "auth": {"enabled": True, "limits_store": "redis", "keys_path": str(tmp_path / "keys.db")},
        }
    )


def client(url: str, tmp_path: Path) -> openai.OpenAI:
    store = SqliteKeyStore(str(tmp_path / "keys.db"), PEPPER.encode())
    key, _ = store.create(environment="prod", name="app", rpm=10_000)
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


def ask(caller: openai.OpenAI, text: str) -> Any:
    return caller.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": text}], temperature=0
    )


def test_a_hung_redis_is_asked_about_once_a_second_not_on_every_request(
    upstream: OpenAIStandIn, tmp_path: Path
) -> None:
    with hung_server() as redis:
        app = create_app(config(upstream, f"redis://127.0.0.1:{redis.port}/0", tmp_path), env=ENV)
        with serve_in_thread(app) as url:
            caller = client(url, tmp_path)
            started = time.monotonic()
            for i in range(20):  # cacheable (temperature 0), each a different question
                assert ask(caller, f"question {i}").http_response.status_code == 200
            elapsed = time.monotonic() - started
            sent = len(REDIS_COMMAND.findall(redis.received))
            # One probe per RETRY_S for the whole process (cache and limits share the circuit),
            # plus the calls in flight when it opened; before, every request sent its own.
            assert sent <= 4 + 2 * elapsed / RETRY_S, f"{sent} commands to a hung Redis in {elapsed:.1f}s"
            degraded = httpx.get(f"{url}/healthz").json()["degraded"]
            assert {"cache", "limits"} <= set(degraded)  # as for a Redis that refuses
            admin, _ = SqliteKeyStore(str(tmp_path / "keys.db"), PEPPER.encode()).create(
                environment="prod", name="ops", admin=True
            )
            metrics = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {admin}"}).text
            assert 'hybridgate_degraded{component="cache"} 1.0' in metrics
            assert 'hybridgate_degraded{component="limits"} 1.0' in metrics


def test_a_stopped_redis_trips_the_circuit_and_the_cache_works_again_once_it_answers(
    upstream: OpenAIStandIn, tmp_path: Path
) -> None:
    with running_redis() as redis:
        app = create_app(config(upstream, redis.url, tmp_path), env=ENV)
        with serve_in_thread(app) as url:
            caller = client(url, tmp_path)
            assert ask(caller, "warm").http_response.status_code == 200
            redis.pause()  # a real redis-server, SIGSTOPped: hung
            try:
                for i in range(5):
                    assert ask(caller, f"while hung {i}").http_response.status_code == 200
                assert "cache" in httpx.get(f"{url}/healthz").json()["degraded"]
            finally:
                redis.resume()
            wait_recovered(url, caller)
            first = ask(caller, "after")
            assert first.headers["x-hybridgate-cache"] == "miss"
            assert wait_hit(caller, "after")


def wait_recovered(url: str, caller: openai.OpenAI, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while httpx.get(f"{url}/healthz").json()["degraded"]:
        assert time.monotonic() < deadline, httpx.get(f"{url}/healthz").json()
        ask(caller, "probe")  # calls are what probe a half-open circuit
        time.sleep(0.2)


def wait_hit(caller: openai.OpenAI, text: str, timeout_s: float = 5) -> bool:
    """The cache write is in the background: the same question is a hit once it landed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ask(caller, text).headers["x-hybridgate-cache"] == "hit":
            return True
        time.sleep(0.1)
    return False


async def test_an_open_circuit_fails_every_call_at_once_the_probing_one_too() -> None:
    """No caller waits for the background probe (one did, 50 ms, once a second per process)."""
    circuit = RedisCircuit()
    circuit.failed()  # a call timed out: open
    answer = asyncio.Event()

    async def probe() -> None:  # a PING that answers when the test says so
        await answer.wait()
        circuit.answered()

    with pytest.raises(RedisConnectionError):
        circuit.admit(probe)  # starts the probe and fails at once, as every call while open
    with pytest.raises(RedisConnectionError):
        circuit.admit(probe)  # the probe is in flight: no second one, no wait
    answer.set()
    for _ in range(100):  # loop turns, not time: the probe task resumes and answers
        if circuit.reason is None:
            break
        await asyncio.sleep(0)
    circuit.admit(probe)  # the probe's answer closed the circuit for the calls after it
