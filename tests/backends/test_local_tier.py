"""The local tier at scale, end to end through the official openai SDK over real HTTP: several
servers behind one ``openai_compat`` backend (least busy, health, a refused connection), and
spill-over to the cloud tier when the local pool is saturated, never for ``local_only`` prompts.

Stand-ins: ``a``, ``b`` (the local servers, standing for vLLM / llama-server / Ollama replicas)
and ``cloud`` are OpenAI-compatible stand-in servers on loopback (tests/standins/), not the real
engines or OpenAI; their ``GET /v1/models`` plays the health endpoint. A stand-in holds a request
for as long as its scripted ``delay_s``. The gateway is the real app; each test builds its own,
so the pool starts idle. Real engines: tests/backends/test_llama_server.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion

from hybridgate.app import create_app
from hybridgate.backends.openai_compat import OpenAICompatBackend
from hybridgate.config import GatewayConfig
from hybridgate.gateway import Gateway
from tests.gateway_process import free_port
from tests.servers import serve_in_thread
from tests.standins.openai_upstream import OpenAIStandIn, Reply, run_openai_standin
from tests.waiting import wait_until

HOLD_S = 1.5
PII = "Please mail ada.lovelace@example.com the invoice"


@contextmanager
def gateway(
    local: dict[str, Any], cloud: str, tmp: Path, **extra: Any
) -> Iterator[tuple[openai.OpenAI, Gateway]]:
    backend = {"type": "openai_compat", "model": "m", "timeout_s": 10}
    config = GatewayConfig.model_validate(
        {
            "ledger": {"path": str(tmp / "gw.db"), "flush_interval_s": 0.05},
            "backends": {
                "local": {**backend, "local": True, **local},
                "cloud": {**backend, "base_url": cloud},
            },
            "routes": {"auto": {"try": ["local", "cloud"]}, "cloud": {"try": ["cloud"]}},
            **extra,
        }
    )
    app = create_app(config, env={})
    with (
        serve_in_thread(app) as url,
        openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) as client,
    ):
        yield client, app.state.gateway


def ask(client: openai.OpenAI, text: str = "hi", stream: bool = False) -> str:
    messages: Any = [{"role": "user", "content": text}]
    if stream:
        parts = client.chat.completions.create(model="auto", messages=messages, stream=True)
        return "".join(c.choices[0].delta.content or "" for c in parts if c.choices)
    reply: ChatCompletion = client.chat.completions.create(model="auto", messages=messages)
    return reply.choices[0].message.content or ""


def pool_of(gw: Gateway) -> OpenAICompatBackend:
    backend = gw.backends["local"]
    assert isinstance(backend, OpenAICompatBackend)
    return backend




def rows(gw: Gateway) -> list[dict[str, Any]]:
    gw.ledger.flush()
    return list(reversed(gw.ledger.recent(100)))


@pytest.fixture
def servers() -> Iterator[tuple[OpenAIStandIn, OpenAIStandIn, OpenAIStandIn]]:
    with run_openai_standin() as a, run_openai_standin() as b, run_openai_standin() as cloud:
        yield a, b, cloud


@contextmanager
def holding(client: openai.OpenAI, server: OpenAIStandIn) -> Iterator[Future[str]]:
    """One request that ``server`` holds for HOLD_S, in flight while the block runs."""
    server.script(Reply(delay_s=HOLD_S))
    before = server.served
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(ask, client, "held")
        wait_until(lambda: server.served > before)
        yield held
        assert held.result() == "echo: held"


Servers = tuple[OpenAIStandIn, OpenAIStandIn, OpenAIStandIn]


@pytest.mark.parametrize("stream", [False, True])
def test_idle_servers_share_the_requests(servers: Servers, tmp_path: Path, stream: bool) -> None:
    a, b, cloud = servers
    local = {"base_url": a.base_url, "replicas": [b.base_url]}
    with gateway(local, cloud.base_url, tmp_path) as (client, gw):
        assert [ask(client, f"n{i}", stream) for i in range(4)] == [f"echo: n{i}" for i in range(4)]
        assert (a.served, b.served, cloud.served) == (2, 2, 0)
        assert pool_of(gw).replicas.in_flight == 0  # every answer gave its server back


def test_a_busy_server_is_passed_over_for_an_idle_one(servers: Servers, tmp_path: Path) -> None:
    a, b, cloud = servers
    local = {"base_url": a.base_url, "replicas": [b.base_url]}
    with gateway(local, cloud.base_url, tmp_path) as (client, _):
        with holding(client, a):  # a fresh pool starts with its first server
            assert [ask(client, f"n{i}") for i in range(3)] == ["echo: n0", "echo: n1", "echo: n2"]
            assert b.served == 3  # round-robin alone would have sent one of them to a
        assert a.served == 1


def test_an_unhealthy_server_is_skipped_and_comes_back(servers: Servers, tmp_path: Path) -> None:
    a, _, cloud = servers
    port = free_port()  # b: nothing listens there at first
    local = {
        "base_url": a.base_url,
        "replicas": [f"http://127.0.0.1:{port}/v1"],
        "health_path": "/v1/models",
        "health_interval_s": 0.1,
    }
    with gateway(local, cloud.base_url, tmp_path) as (client, gw):
        b_state = pool_of(gw).replicas.replicas[1]
        wait_until(lambda: not b_state.healthy)
        assert [ask(client, f"n{i}") for i in range(4)] == [f"echo: n{i}" for i in range(4)]
        assert (a.served, cloud.served) == (4, 0)
        with run_openai_standin(port=port) as b:
            wait_until(lambda: b_state.healthy)
            for i in range(4):
                ask(client, f"m{i}")
            assert (b.served, a.served) == (2, 6)
        wait_until(lambda: not b_state.healthy)  # b stopped again
        assert ask(client, "last") == "echo: last" and a.served == 7


def test_a_refused_connection_goes_to_the_next_server(servers: Servers, tmp_path: Path) -> None:
    a, _, cloud = servers
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    local = {"base_url": dead, "replicas": [a.base_url]}
    with gateway(local, cloud.base_url, tmp_path) as (client, gw):
        assert [ask(client, f"n{i}") for i in range(3)] == ["echo: n0", "echo: n1", "echo: n2"]
        assert a.served == 3 and cloud.served == 0
        assert [r["attempts"] for r in rows(gw)] == [["local:ok"]] * 3  # no fallback was needed
        assert pool_of(gw).replicas.replicas[0].served == 1  # tried once, then set aside


SATURATED = {"replica_max_in_flight": 1, "spill_queue_depth": 0}


def test_a_saturated_pool_spills_over_to_the_cloud(servers: Servers, tmp_path: Path) -> None:
    a, _, cloud = servers
    # A full pool is not a failing one: it is neither retried nor counted by its circuit breaker.
    local = {"base_url": a.base_url, **SATURATED, "retries": 1, "breaker_min_requests": 1}
    with gateway(local, cloud.base_url, tmp_path) as (client, gw):
        with holding(client, a):
            assert [ask(client, "spilled"), ask(client, "again")] == ["echo: spilled", "echo: again"]
            assert cloud.served == 2
        assert ask(client, "after") == "echo: after" and a.served == 2  # back to local once free
        spilled = [r for r in rows(gw) if r["backend"] == "cloud"]
        assert [r["attempts"] for r in spilled] == [["local:error:overloaded", "cloud:ok"]] * 2
        assert [r["status"] for r in spilled] == [200, 200]


def privacy(policy: str) -> dict[str, Any]:
    return {"privacy": {"policy": "allow", "routes": {"auto": policy}, "ner_model": None}}


def test_local_only_is_never_spilled(servers: Servers, tmp_path: Path) -> None:
    a, _, cloud = servers
    local = {"base_url": a.base_url, **SATURATED}
    with gateway(local, cloud.base_url, tmp_path, **privacy("local_only")) as (client, gw):
        with holding(client, a):
            with pytest.raises(openai.APIStatusError) as refused:
                ask(client, PII)
            assert refused.value.status_code == 503 and refused.value.response.headers["retry-after"]
        assert cloud.served == 0
        row = next(r for r in rows(gw) if r["status"] == 503)
        assert row["privacy"] == "local_only" and row["attempts"] == ["local:error:overloaded"]


def test_local_only_waits_for_a_slot_when_the_pool_may_queue(servers: Servers, tmp_path: Path) -> None:
    a, _, cloud = servers
    local = {"base_url": a.base_url, "replica_max_in_flight": 1, "spill_queue_depth": 1}
    with gateway(local, cloud.base_url, tmp_path, **privacy("local_only")) as (client, gw):
        with holding(client, a):
            assert ask(client, PII) == f"echo: {PII}"  # waited for the held request to finish
        assert (a.served, cloud.served) == (2, 0)
        assert rows(gw)[-1]["attempts"] == ["local:ok"]


def test_a_slow_busy_pool_spills_and_an_idle_one_gets_the_next_request(
    servers: Servers, tmp_path: Path
) -> None:
    a, _, cloud = servers
    local = {"base_url": a.base_url, "spill_latency_ms": 300}
    with gateway(local, cloud.base_url, tmp_path) as (client, gw):
        a.script(Reply(delay_s=0.6))
        assert ask(client, "slow") == "echo: slow"  # the pool's time to first byte is now ~600 ms
        with holding(client, a):  # busy and slow: spill
            assert ask(client, "spilled") == "echo: spilled" and cloud.served == 1
        assert ask(client, "idle") == "echo: idle" and a.served == 3  # idle: let one through
        spilled = next(r for r in rows(gw) if r["backend"] == "cloud")
        assert spilled["attempts"] == ["local:error:overloaded", "cloud:ok"]
