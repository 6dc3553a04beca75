"""Two gateway replicas share one ledger on a real PostgreSQL server; no record is lost.

Real parts: two ``python -m hybridgate serve`` child processes (tests/gateway_process.py), a
PostgreSQL server from Debian's packages on loopback (tests/postgres_server.py), the official
``openai`` SDK as the client. The upstream is the OpenAI stand-in from tests/standins (a test
server on loopback, not OpenAI).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import httpx
import openai
import pytest

from tests.conftest import GatewayFactory
from tests.gateway_process import REPO, GatewayProcess, upstream_config
from tests.postgres_server import PostgresServer
from tests.standins.openai_upstream import OpenAIStandIn, run_openai_standin
from tests.waiting import wait_until

REQUESTS = 60


@pytest.fixture
def upstream() -> Iterator[OpenAIStandIn]:
    with run_openai_standin(api_key="sk-up") as up:
        yield up


def replica_config(upstream_url: str, workdir: Path, dsn: str, flush_interval_s: float) -> str:
    base = upstream_config(upstream_url, workdir / "unused.db")
    base = base.replace("flush_interval_s = 0.05", f"flush_interval_s = {flush_interval_s}")
    ledger = f'[ledger]\nstore = "postgres"\nspool_path = "{workdir / "spool.jsonl"}"\n'
    return base.replace("[ledger]\n", ledger) + f'[postgres]\ndsn = "{dsn}"\n'


def start_replicas(
    start: GatewayFactory,
    tmp_path: Path,
    upstream: OpenAIStandIn,
    dsn: str,
    *,
    flush_interval_s: float = 0.05,
) -> list[GatewayProcess]:
    replicas = []
    for name in ("a", "b"):
        workdir = tmp_path / name
        config = replica_config(upstream.base_url, workdir, dsn, flush_interval_s)
        replicas.append(start(config, name))
    return replicas


def ask(replica: GatewayProcess, request_id: str) -> str:
    with openai.OpenAI(base_url=f"{replica.url}/v1", api_key="unused", max_retries=0) as client:
        reply = client.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-request-id": request_id},
        )
    return reply.choices[0].message.content or ""


def stop(replicas: list[GatewayProcess]) -> None:
    for replica in replicas:
        replica.terminate()
    for replica in replicas:
        assert replica.wait(timeout_s=60) in (0, -signal.SIGTERM), replica.output()
        assert "Traceback" not in replica.output(), replica.output()


def request_ids(dsn: str) -> list[str]:
    async def run() -> list[str]:
        conn = await asyncpg.connect(dsn)
        try:
            return [str(r[0]) for r in await conn.fetch("SELECT request_id FROM requests")]
        finally:
            await conn.close()

    return asyncio.run(run())


def health(replica: GatewayProcess) -> dict[str, object]:
    body: dict[str, object] = httpx.get(f"{replica.url}/healthz", timeout=5).json()
    return body


def test_two_replicas_record_every_request_and_drain_on_sigterm(
    tmp_path: Path,
    upstream: OpenAIStandIn,
    own_postgres: PostgresServer,
    start_gateway: GatewayFactory,
) -> None:
    # Batches wait a minute: every row is still in the replicas' memory when SIGTERM lands.
    replicas = start_replicas(start_gateway, tmp_path, upstream, own_postgres.dsn, flush_interval_s=60)
    names = [f"{'ab'[i % 2]}-{i}" for i in range(REQUESTS)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda n: ask(replicas[n[0] == "b"], n), names))
    assert all(answers)
    assert request_ids(own_postgres.dsn) == []
    stop(replicas)  # rows still in memory are flushed by the drain, not lost
    assert sorted(request_ids(own_postgres.dsn)) == sorted(names)
    config = tmp_path / "a" / "hybridgate.toml"
    usage = subprocess.run(
        [sys.executable, "-m", "hybridgate", "usage", "--config", str(config), "--json"],
        capture_output=True, text=True, cwd=REPO, check=True,
    )  # fmt: skip
    assert '"requests": 60' in usage.stdout, usage.stdout


def test_postgres_down_mid_load_spools_degrades_and_loses_nothing(
    tmp_path: Path,
    upstream: OpenAIStandIn,
    own_postgres: PostgresServer,
    start_gateway: GatewayFactory,
) -> None:
    sent: list[str] = []
    failures: list[BaseException] = []
    done = threading.Event()
    replicas = start_replicas(start_gateway, tmp_path, upstream, own_postgres.dsn)

    def load() -> None:
        i = 0
        while not done.is_set():
            name = f"{'ab'[i % 2]}-{i}"
            try:
                ask(replicas[i % 2], name)
                sent.append(name)
            except Exception as exc:  # asserted on below: no request may fail
                failures.append(exc)
            i += 1

    worker = threading.Thread(target=load)
    worker.start()
    wait_until(lambda: len(sent) >= 20, 30, "requests before the outage")
    own_postgres.stop()
    during = len(sent)
    wait_until(lambda: all(health(r)["status"] == "degraded" for r in replicas), 30, "degraded health")
    ledger_reason = health(replicas[0])["degraded"]
    assert isinstance(ledger_reason, dict) and "spooled" in str(ledger_reason["ledger"])
    wait_until(lambda: len(sent) >= during + 20, 30, "requests during the outage")
    own_postgres.start()
    wait_until(lambda: all(health(r)["status"] == "ok" for r in replicas), 30, "recovery")
    done.set()
    worker.join(timeout=30)
    stop(replicas)
    assert failures == []
    for replica in replicas:  # the rows went through the spool, not just memory
        assert "unreachable" in replica.output() and "spool replayed" in replica.output()
    assert sorted(request_ids(own_postgres.dsn)) == sorted(sent)
    assert not any(
        (tmp_path / n / "spool.jsonl").read_bytes() for n in "ab" if (tmp_path / n / "spool.jsonl").exists()
    )
