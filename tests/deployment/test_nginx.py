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
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from hybridgate.cli import KEEP_ALIVE_S
from tests.conftest import GatewayFactory
from tests.gateway_process import GatewayProcess, upstream_config
from tests.nginx_server import NginxServer, established_to, run_nginx
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
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=timeout_s)
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
