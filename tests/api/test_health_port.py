"""[server] health_port: probes answer on their own port from the start, and the serving port
stays closed (connections refused) until the replica is ready.

Real parts: ``python -m hybridgate serve`` as a child process (tests/gateway_process.py), a real
PostgreSQL (Debian's, tests/postgres_server.py) holding the keys, the official openai SDK as the
caller. The upstream is the OpenAI stand-in from tests/standins (a test server on loopback, not
OpenAI).
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import openai
import pytest

from hybridgate.auth.pg_keys import PostgresKeyStore
from tests.gateway_process import free_port, run_gateway, upstream_config
from tests.postgres_server import PostgresServer, run_postgres
from tests.standins.openai_upstream import OpenAIStandIn, run_openai_standin

PEPPER = "health-port-test-pepper-0123456789"
ENV = {"HYBRIDGATE_KEY_PEPPER": PEPPER}


@pytest.fixture
def upstream() -> Iterator[OpenAIStandIn]:
    with run_openai_standin(api_key="sk-up") as up:
        yield up


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    with run_postgres() as pg:
        yield pg


def keys_in_postgres(
    upstream: OpenAIStandIn, postgres: PostgresServer, workdir: Path, health_port: int
) -> str:
    return upstream_config(upstream.base_url, workdir / "ledger.db") + (
        f'[server]\nhealth_port = {health_port}\n[postgres]\ndsn = "{postgres.dsn}"\ntimeout_s = 0.5\n'
        '[auth]\nenabled = true\nkeys_store = "postgres"\n'
    )


def refuses(url: str) -> bool:
    """Whether a TCP connection to ``url``'s port is refused (nothing listens there)."""
    port = int(url.rsplit(":", 1)[1])
    try:
        with closing(socket.create_connection(("127.0.0.1", port), timeout=2)):
            return False
    except ConnectionRefusedError:
        return True


def test_the_serving_port_opens_only_once_postgres_was_reached_and_probes_answer_meanwhile(
    upstream: OpenAIStandIn, postgres: PostgresServer, tmp_path: Path
) -> None:
    postgres.stop()
    health_port = free_port()
    config = keys_in_postgres(upstream, postgres, tmp_path, health_port)
    with run_gateway(config, tmp_path, env=ENV, health_port=health_port) as gateway:
        health = gateway.health_url
        assert httpx.get(f"{health}/livez", timeout=5).json() == {"status": "alive"}
        ready = httpx.get(f"{health}/readyz", timeout=5)
        assert ready.status_code == 503 and "keys" in ready.json()["waiting_for"]
        assert "keys" in httpx.get(f"{health}/healthz", timeout=5).json()["degraded"]
        # not ready: nothing listens on the serving port, so a proxy sends the request elsewhere
        assert refuses(gateway.url)
        time.sleep(1.5)  # several readiness rounds later, still closed
        assert refuses(gateway.url)

        postgres.start()
        deadline = time.monotonic() + 20
        while httpx.get(f"{health}/readyz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "never ready"
            time.sleep(0.02)
        # ready means the serving port takes connections now: a probe that said "ready" before
        # the port listened would send a Service's traffic to a closed port
        assert not refuses(gateway.url)
        key, _ = PostgresKeyStore(postgres.dsn, PEPPER.encode()).create(environment="test", name="app")
        client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)
        reply = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content
        assert httpx.get(f"{gateway.url}/readyz", timeout=5).status_code == 200  # on both ports

        postgres.stop()  # reached once: the port stays open, recent keys are served
        reply = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "again"}])
        assert reply.choices[0].message.content
        assert httpx.get(f"{health}/readyz", timeout=5).status_code == 200


def test_a_replica_waiting_for_readiness_stops_at_once_on_sigterm(
    upstream: OpenAIStandIn, postgres: PostgresServer, tmp_path: Path
) -> None:
    postgres.stop()
    health_port = free_port()
    config = keys_in_postgres(upstream, postgres, tmp_path, health_port)
    with run_gateway(config, tmp_path, env=ENV, health_port=health_port) as gateway:
        assert httpx.get(f"{gateway.health_url}/readyz", timeout=5).status_code == 503
        gateway.terminate()
        # not stuck waiting for PostgreSQL; uvicorn re-raises the SIGTERM it handled: a clean exit
        assert gateway.wait(10) in (0, -signal.SIGTERM), gateway.output()
        assert refuses(gateway.health_url or "")


def test_without_a_health_port_the_serving_port_answers_readyz_as_before(
    upstream: OpenAIStandIn, postgres: PostgresServer, tmp_path: Path
) -> None:
    postgres.stop()
    config = keys_in_postgres(upstream, postgres, tmp_path, 0).replace("[server]\nhealth_port = 0\n", "")
    with run_gateway(config, tmp_path, env=ENV) as gateway:
        ready = httpx.get(f"{gateway.url}/readyz", timeout=5)
        assert ready.status_code == 503 and "keys" in ready.json()["waiting_for"]
