"""deploy/nginx/nginx.conf, run as shipped (tests/nginx_server.py), in front of two replicas.

Real parts: Debian's nginx with the shipped file, two ``python -m hybridgate serve`` child
processes (the real CLI and its keep-alive) sharing the session's real Redis (cache) and a
database on its real PostgreSQL (ledger; tests/conftest.py), the official openai SDK as the
caller. The upstream is the OpenAI stand-in from tests/standins (a test server on loopback, not
OpenAI).
"""

from __future__ import annotations

import concurrent.futures
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from hybridgate.auth.pg_keys import PostgresKeyStore
from hybridgate.cli import KEEP_ALIVE_S
from tests.conftest import GatewayFactory
from tests.gateway_process import GatewayProcess, free_port, run_gateway, upstream_config
from tests.nginx_server import NginxServer, established_to, run_nginx
from tests.postgres_server import run_postgres
from tests.redis_server import RedisServer
from tests.standins.openai_upstream import OpenAIStandIn, Reply, run_openai_standin


@pytest.fixture
def upstream() -> Iterator[OpenAIStandIn]:
    with run_openai_standin(api_key="sk-up") as up:
        yield up


@pytest.fixture
def stack(
    upstream: OpenAIStandIn,
    tmp_path: Path,
    redis: RedisServer,
    postgres_dsn: str,
    start_gateway: GatewayFactory,
) -> Iterator[tuple[NginxServer, list[GatewayProcess]]]:
    replicas = []
    for name in ("a", "b"):
        workdir = tmp_path / name
        config = upstream_config(upstream.base_url, workdir / "ledger.db") + (
            f'[redis]\nurl = "{redis.url}"\n[cache]\nstore = "redis"\n'
            f'[postgres]\ndsn = "{postgres_dsn}"\n'
        )
        ledger = f'[ledger]\nstore = "postgres"\nspool_path = "{workdir}/spool"\n'
        replicas.append(start_gateway(config.replace("[ledger]\n", ledger), name))
    ports = [int(replica.url.rsplit(":", 1)[1]) for replica in replicas]
    with run_nginx(ports) as nginx:
        yield nginx, replicas


def ask(url: str, text: str, timeout_s: float = 30) -> Any:
    with openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=timeout_s) as client:
        return client.chat.completions.create(model="auto", messages=[{"role": "user", "content": text}])


def test_nginx_closes_idle_upstream_connections_before_the_gateway_does(
    stack: tuple[NginxServer, list[GatewayProcess]],
) -> None:
    nginx, replicas = stack
    ports = [int(replica.url.rsplit(":", 1)[1]) for replica in replicas]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: ask(nginx.url, f"burst {i}"), range(40)))
    assert all(answer.choices[0].message.content for answer in answers)
    assert established_to(ports) > 0  # nginx keeps connections to the replicas open (keepalive)
    time.sleep(KEEP_ALIVE_S - 0.5)  # idle: past nginx's keepalive_timeout, before the gateway's
    # nginx already closed them; had it not, the gateway would close them at KEEP_ALIVE_S while
    # nginx may be sending the next request on one: a 502 for that caller.
    assert established_to(ports) == 0, "nginx still holds idle connections the gateway will close"
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        again = list(pool.map(lambda i: ask(nginx.url, f"after idle {i}"), range(40)))
    assert all(answer.choices[0].message.content for answer in again)


def test_a_killed_replica_gives_its_callers_a_json_502_and_the_rest_go_to_the_other(
    upstream: OpenAIStandIn, stack: tuple[NginxServer, list[GatewayProcess]]
) -> None:
    nginx, replicas = stack
    upstream.script(Reply(delay_s=3.0), Reply(delay_s=3.0))  # two slow answers: one per replica
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        calls = [pool.submit(ask, nginx.url, f"slow {i}") for i in range(2)]
        time.sleep(1.0)  # both are in flight, one on each replica (least_conn)
        replicas[0].process.send_signal(signal.SIGKILL)
        outcomes = [call.exception() or call.result() for call in calls]
    failed = [o for o in outcomes if isinstance(o, Exception)]
    assert len(failed) == 1, outcomes  # only the request in flight on the killed replica
    error = failed[0]
    assert isinstance(error, openai.APIStatusError) and error.status_code == 502
    assert error.response.headers["content-type"].startswith("application/json")
    body = error.response.json()
    assert body["error"]["type"] == "upstream_error" and "nginx" in body["error"]["message"]
    for i in range(6):  # new requests: nginx finds the dead replica refusing and uses the other
        assert ask(nginx.url, f"after kill {i}").choices[0].message.content
    replicas[1].process.send_signal(signal.SIGKILL)
    answer = httpx.post(f"{nginx.url}/v1/chat/completions", json={"model": "auto", "messages": []})
    assert answer.status_code == 502 and answer.json()["error"]["code"] == "bad_gateway"


PEPPER = "nginx-test-pepper-0123456789"


def test_a_replica_restarted_while_postgres_is_down_gets_no_request_until_ready(
    upstream: OpenAIStandIn, tmp_path: Path
) -> None:
    """Issue 23 (c): with [server] health_port the restarted replica's serving port stays closed
    while it cannot verify keys, nginx finds it refusing and passes every POST to the other one
    (nothing was sent, so a POST is passed on too). Without it, that replica answered 503s."""
    with ExitStack() as stack:
        postgres = stack.enter_context(run_postgres())
        env = {"HYBRIDGATE_KEY_PEPPER": PEPPER}
        ports, health_ports = [free_port(), free_port()], [free_port(), free_port()]

        def start(index: int) -> GatewayProcess:
            workdir = tmp_path / f"r{index}"
            workdir.mkdir(exist_ok=True)
            config = upstream_config(upstream.base_url, workdir / "ledger.db") + (
                f"[server]\nhealth_port = {health_ports[index]}\n"
                f'[postgres]\ndsn = "{postgres.dsn}"\ntimeout_s = 0.5\n'
                '[auth]\nenabled = true\nkeys_store = "postgres"\n'
            )
            return stack.enter_context(
                run_gateway(config, workdir, env=env, port=ports[index], health_port=health_ports[index])
            )

        replicas = [start(0), start(1)]
        nginx = stack.enter_context(run_nginx(ports))
        key, _ = PostgresKeyStore(postgres.dsn, PEPPER.encode()).create(environment="test", name="app")
        client = stack.enter_context(
            openai.OpenAI(base_url=f"{nginx.url}/v1", api_key=key, max_retries=0, timeout=30)
        )

        def ask_with_key(text: str) -> Any:
            return client.chat.completions.create(model="auto", messages=[{"role": "user", "content": text}])

        for i in range(10):  # both replicas verify the key once (least_conn alternates when idle)
            assert ask_with_key(f"warm {i}").choices[0].message.content
        postgres.stop()
        replicas[0].terminate()
        replicas[0].wait(30)
        replicas[0] = start(0)  # waits for /livez on its health port; /readyz there says 503
        assert httpx.get(f"{replicas[0].health_url}/readyz", timeout=5).status_code == 503
        failures = []
        for i in range(30):
            try:
                ask_with_key(f"during the outage {i}")
            except openai.APIError as exc:
                failures.append(exc)
        assert failures == []  # the other replica served every one from its recent keys
        postgres.start()
        wait_until = time.monotonic() + 20
        while httpx.get(f"{replicas[0].health_url}/readyz", timeout=5).status_code != 200:
            assert time.monotonic() < wait_until
            time.sleep(0.2)
        direct = stack.enter_context(
            openai.OpenAI(base_url=f"{replicas[0].url}/v1", api_key=key, max_retries=0, timeout=30)
        )
        reply = direct.chat.completions.create(model="auto", messages=[{"role": "user", "content": "back"}])
        assert reply.choices[0].message.content  # ready: its serving port is open and serves
