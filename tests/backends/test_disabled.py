"""A cloud backend whose key variable is set but empty is disabled, loudly, instead of stopping
the gateway; an unset variable still does.

Real parts: the gateway app on a loopback port, the official openai SDK as the caller; the working
upstream is the OpenAI stand-in from tests/standins (a test server on loopback, not OpenAI). The
disabled backend's base_url is never contacted (nothing listens there).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from hybridgate.app import create_app
from hybridgate.config import GatewayConfig
from hybridgate.errors import ConfigError
from tests.servers import serve_in_thread
from tests.standins.openai_upstream import OpenAIStandIn, run_openai_standin


@pytest.fixture
def upstream() -> Iterator[OpenAIStandIn]:
    with run_openai_standin(api_key="sk-up") as up:
        yield up


def config(upstream: OpenAIStandIn, tmp_path: Path) -> GatewayConfig:
    cloud = {"type": "openai_compat", "base_url": "http://127.0.0.1:9/v1", "model": "gpt-4o-mini"}
    local = {"type": "openai_compat", "base_url": upstream.base_url, "model": "m", "api_key_env": "UP_KEY"}
    return GatewayConfig.model_validate(
        {
            "ledger": {"path": str(tmp_path / "ledger.db")},
            "backends": {"openai": {**cloud, "api_key_env": "OPENAI_API_KEY"}, "local": local},
            "routes": {"auto": {"try": ["openai", "local"]}, "openai": {"try": ["openai"]}},
        }
    )


def test_an_empty_key_disables_the_backend_and_its_routes_use_the_next_one(
    upstream: OpenAIStandIn, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"OPENAI_API_KEY": "", "UP_KEY": "sk-up"}  # what .env.example and the example Secret hold
    with serve_in_thread(create_app(config(upstream, tmp_path), env=env)) as url:
        assert "backend 'openai' is DISABLED" in caplog.text
        health = httpx.get(f"{url}/healthz").json()
        assert health["backends"]["openai"]["disabled"] == "$OPENAI_API_KEY is empty"
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        reply = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "hi"}]
        )
        assert reply.headers["x-hybridgate-backend"] == "local"
        with pytest.raises(openai.APIStatusError) as refused:
            client.chat.completions.create(model="openai", messages=[{"role": "user", "content": "hi"}])
        assert refused.value.status_code == 503
        assert "disabled: $OPENAI_API_KEY is empty" in refused.value.message


def test_an_unset_key_variable_still_stops_start_up(upstream: OpenAIStandIn, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\$OPENAI_API_KEY, which is not set"):
        create_app(config(upstream, tmp_path), env={"UP_KEY": "sk-up"})
