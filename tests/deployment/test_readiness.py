"""/readyz and /livez: a replica that cannot serve what it is configured for says so, and stays
out of rotation until it can; a live process always answers /livez.

Real parts: the gateway app on a loopback port (uvicorn in a thread), a real PostgreSQL server
(Debian's, tests/postgres_server.py) holding the keys, the official openai SDK as the caller. The
upstream is the OpenAI stand-in from tests/standins (a test server on loopback, not OpenAI).
The embedded-engine tests run ``python -m hybridgate serve`` with the packaged SmolLM2 GGUF in a
real engine process (nothing stands in), held mid-load with SIGSTOP so the window is certain.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from hybridgate.app import create_app
from hybridgate.auth.pg_keys import PostgresKeyStore
from hybridgate.config import GatewayConfig
from tests.embedded_gateway import embedded_config, engine_pids
from tests.gateway_process import GatewayProcess, free_port, run_gateway
from tests.postgres_server import PostgresServer
from tests.servers import serve_in_thread
from tests.standins.openai_upstream import OpenAIStandIn, run_openai_standin
from tests.waiting import wait_until

PEPPER = "readiness-test-pepper-0123456789"
ENV = {"HYBRIDGATE_KEY_PEPPER": PEPPER, "UP_KEY": "sk-up"}
TIMEOUT_S = 0.5  # [postgres] timeout_s


@pytest.fixture
def upstream() -> Iterator[OpenAIStandIn]:
    with run_openai_standin(api_key="sk-up") as up:
        yield up


def config(upstream: OpenAIStandIn, own_postgres: PostgresServer, tmp_path: Path) -> GatewayConfig:
    backend = {"type": "openai_compat", "base_url": upstream.base_url, "model": "m", "api_key_env": "UP_KEY"}
    return GatewayConfig.model_validate(
        {
            "environment": "prod",
            "ledger": {"path": str(tmp_path / "ledger.db")},
            "backends": {"up": backend},
            "routes": {"auto": {"try": ["up"]}},
            "auth": {"enabled": True, "keys_store": "postgres"},
            "postgres": {"dsn": own_postgres.dsn, "timeout_s": TIMEOUT_S},
        }
    )


def get(url: str) -> tuple[int, Any]:
    answer = httpx.get(url, timeout=10)
    return answer.status_code, answer.json()


def wait_ready(url: str, timeout_s: float = 15) -> None:
    wait_until(lambda: get(f"{url}/readyz")[0] == 200, timeout_s, f"{url}/readyz to answer 200")


def test_a_replica_started_while_postgres_is_down_is_not_ready_until_it_is_back(
    upstream: OpenAIStandIn, own_postgres: PostgresServer, tmp_path: Path
) -> None:
    own_postgres.stop()
    with serve_in_thread(create_app(config(upstream, own_postgres, tmp_path), env=ENV)) as url:
        assert get(f"{url}/livez") == (200, {"status": "alive"})
        status, health = get(f"{url}/healthz")
        assert status == 200 and "keys" in health["degraded"]  # the details stay on /healthz
        status, ready = get(f"{url}/readyz")
        assert status == 503 and ready["status"] == "not ready"
        assert "has not been reached since start" in ready["waiting_for"]["keys"]
        own_postgres.start()
        wait_ready(url)
        key, _ = PostgresKeyStore(own_postgres.dsn, PEPPER.encode()).create(environment="prod", name="app")
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
        reply = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content
        own_postgres.stop()  # reached once: later outages are served around (recent keys), still ready
        assert get(f"{url}/readyz") == (200, {"status": "ready", "waiting_for": {}})


def test_a_replica_started_against_a_hung_postgres_starts_and_answers_readyz_within_the_timeout(
    upstream: OpenAIStandIn, own_postgres: PostgresServer, tmp_path: Path
) -> None:
    own_postgres.pause()  # accepts connections, never answers
    try:
        with serve_in_thread(create_app(config(upstream, own_postgres, tmp_path), env=ENV)) as url:
            started = time.monotonic()
            status, ready = get(f"{url}/readyz")
            assert status == 503 and "keys" in ready["waiting_for"]
            assert time.monotonic() - started < TIMEOUT_S + 1.0
            assert get(f"{url}/livez")[0] == 200
            own_postgres.resume()
            wait_ready(url)
    finally:
        own_postgres.resume()


def stop_engine_while_it_loads(gateway: GatewayProcess, old: int | None = None) -> int:
    """Find the engine process the gateway starts (another than ``old``) from the moment it
    appears and SIGSTOP it before it can finish loading (python, llama.cpp, the model take a
    second or more; /proc is polled every 10 ms): the loading state lasts until SIGCONT."""
    deadline = time.monotonic() + 60
    while not (pids := [pid for pid in engine_pids(gateway.pid) if pid != old]):
        assert time.monotonic() < deadline, f"no engine process started:\n{gateway.output()}"
        time.sleep(0.01)
    os.kill(pids[0], signal.SIGSTOP)
    return pids[0]


def assert_loading(probes_url: str) -> None:
    assert get(f"{probes_url}/livez") == (200, {"status": "alive"})
    status, ready = get(f"{probes_url}/readyz")
    assert status == 503, ready
    assert ready["waiting_for"]["local"].startswith("loading"), ready


def test_readyz_is_503_while_the_embedded_engine_loads_and_200_once_it_has_loaded(tmp_path: Path) -> None:
    """The real engine (SmolLM2 via llama.cpp) held mid-load; the probes answer on the health
    port while the serving port stays closed, and a request is served once it is ready."""
    health_port = free_port()
    config = embedded_config(tmp_path / "ledger.db", extra="") + f"[server]\nhealth_port = {health_port}\n"
    with run_gateway(config, tmp_path, health_port=health_port, start_timeout_s=60) as gateway:
        engine = stop_engine_while_it_loads(gateway)
        try:
            assert_loading(f"http://127.0.0.1:{health_port}")
            with pytest.raises(httpx.ConnectError):  # refused: not listening until ready
                httpx.get(f"{gateway.url}/livez", timeout=5)
        finally:
            os.kill(engine, signal.SIGCONT)
        wait_ready(f"http://127.0.0.1:{health_port}", timeout_s=120)
        client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0, timeout=60)
        reply = client.chat.completions.create(
            model="auto", max_tokens=4, messages=[{"role": "user", "content": "hi"}]
        )
        assert reply.choices[0].message.content is not None


def test_readyz_is_503_while_a_crashed_engine_reloads_its_model(tmp_path: Path) -> None:
    """No health port: the serving port is open and /readyz there says 503 while the engine
    process that replaces a crashed one loads the model (held mid-load by SIGSTOP)."""
    with run_gateway(embedded_config(tmp_path / "ledger.db"), tmp_path, start_timeout_s=120) as gateway:
        wait_ready(gateway.url)
        first = engine_pids(gateway.pid)
        assert len(first) == 1
        os.kill(first[0], signal.SIGKILL)  # the gateway starts a new engine at once
        engine = stop_engine_while_it_loads(gateway, old=first[0])
        try:
            assert_loading(gateway.url)
        finally:
            os.kill(engine, signal.SIGCONT)
        wait_ready(gateway.url, timeout_s=120)
