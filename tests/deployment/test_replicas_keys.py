"""Two gateway replicas share one key store in a real PostgreSQL server: create once, revoke once.

Real parts: two ``python -m hybridgate serve`` child processes (tests/gateway_process.py) with
``[auth] keys_store = "postgres"``, the ``hybridgate keys`` CLI as a child process, a PostgreSQL
server from Debian's packages on loopback (tests/postgres_server.py), the official ``openai`` SDK as
the client. The upstream is the OpenAI stand-in from tests/standins (a test server on loopback,
not OpenAI). Each replica keeps its own SQLite ledger: only the keys are shared here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import GatewayFactory
from tests.gateway_process import REPO, GatewayProcess, upstream_config
from tests.postgres_server import PostgresServer
from tests.standins.openai_upstream import OpenAIStandIn, run_openai_standin

PEPPER = {"HYBRIDGATE_KEY_PEPPER": "shared-test-pepper-0123456789"}
CACHE_TTL_S = 1.0  # [auth] key_cache_ttl_s: how long a replica trusts a key row (default 5 s)
MARGIN_S = 0.5  # past the configured bound: the next lookup refreshes from PostgreSQL


@pytest.fixture
def upstream() -> Iterator[OpenAIStandIn]:
    with run_openai_standin(api_key="sk-up") as up:
        yield up


def replica_config(upstream_url: str, workdir: Path, dsn: str) -> str:
    base = upstream_config(upstream_url, workdir / "ledger.db")
    auth = f'[auth]\nenabled = true\nkeys_store = "postgres"\nkey_cache_ttl_s = {CACHE_TTL_S}\n'
    return base + auth + f'[postgres]\ndsn = "{dsn}"\ntimeout_s = 1.0\n'


def start_replicas(
    start: GatewayFactory, tmp_path: Path, upstream: OpenAIStandIn, dsn: str
) -> list[GatewayProcess]:
    replicas = []
    for name in ("a", "b"):
        workdir = tmp_path / name
        config = replica_config(upstream.base_url, workdir, dsn)
        replicas.append(start(config, name, env=PEPPER))
    return replicas


def keys_cli(tmp_path: Path, *args: str) -> str:
    """``hybridgate keys ...`` against replica a's config (the Postgres store); returns stdout."""
    command = [
        sys.executable,
        "-m",
        "hybridgate",
        "keys",
        *args,
        "--config",
        str(tmp_path / "a" / "hybridgate.toml"),
    ]
    env = {**os.environ, **PEPPER, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def ask(replica: GatewayProcess, key: str) -> str:
    client = openai.OpenAI(base_url=f"{replica.url}/v1", api_key=key, max_retries=0)
    reply = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
    return reply.choices[0].message.content or ""


def health(replica: GatewayProcess) -> dict[str, object]:
    body: dict[str, object] = httpx.get(f"{replica.url}/healthz", timeout=5).json()
    return body


def test_a_key_made_once_works_on_both_replicas_and_a_revocation_reaches_both(
    tmp_path: Path, upstream: OpenAIStandIn, postgres_dsn: str, start_gateway: GatewayFactory
) -> None:
    replicas = start_replicas(start_gateway, tmp_path, upstream, postgres_dsn)
    key = keys_cli(tmp_path, "create", "--env", "test", "--name", "app1").strip()
    key_id = key[len("hg-test-") :][:8]
    assert all(ask(replica, key) for replica in replicas)
    assert f'"key_id": "{key_id}"' in keys_cli(tmp_path, "list", "--json")
    assert f"revoked key {key_id}" in keys_cli(tmp_path, "revoke", key_id)
    time.sleep(CACHE_TTL_S + MARGIN_S)  # the configured bound: every replica refuses by now
    for replica in replicas:
        with pytest.raises(openai.AuthenticationError, match="revoked"):
            ask(replica, key)
    for replica in replicas:
        assert "Traceback" not in replica.output(), replica.output()


def test_postgres_down_serves_recent_keys_refuses_unseen_ones_with_503_and_recovers(
    tmp_path: Path,
    upstream: OpenAIStandIn,
    own_postgres: PostgresServer,
    start_gateway: GatewayFactory,
) -> None:
    replicas = start_replicas(start_gateway, tmp_path, upstream, own_postgres.dsn)
    recent = keys_cli(tmp_path, "create", "--env", "test", "--name", "recent").strip()
    unseen = keys_cli(tmp_path, "create", "--env", "test", "--name", "unseen").strip()
    assert all(ask(replica, recent) for replica in replicas)

    own_postgres.stop()
    time.sleep(CACHE_TTL_S + MARGIN_S)  # past the fresh cache: each lookup now meets the outage
    for replica in replicas:
        assert ask(replica, recent)  # verified recently: served from the replica's cache
        with pytest.raises(openai.InternalServerError) as caught:
            ask(replica, unseen)
        assert caught.value.status_code == 503 and caught.value.response.headers["retry-after"] == "5"
        error = caught.value.response.json()["error"]
        assert (error["type"], error["code"]) == ("service_unavailable", "key_store_unavailable")
        anthropic = httpx.post(
            f"{replica.url}/v1/messages",
            headers={"x-api-key": unseen, "anthropic-version": "2023-06-01"},
            json={"model": "auto", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
        assert anthropic.status_code == 503 and anthropic.json()["type"] == "error"
        body = health(replica)
        assert body["status"] == "degraded" and "PostgreSQL" in str(body["degraded"]["keys"])  # type: ignore[index]

    own_postgres.start()
    for replica in replicas:
        assert ask_until_served(replica, unseen)
        assert health(replica)["status"] == "ok"
        assert "Traceback" not in replica.output(), replica.output()


def ask_until_served(replica: GatewayProcess, key: str) -> str:
    """The first answer once the replica retries PostgreSQL (it waits ``retry_s``, 1 s, after a failure)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return ask(replica, key)
        except openai.InternalServerError:
            assert time.monotonic() < deadline, "the replica never recovered"
            time.sleep(0.2)
