"""A gateway on loopback in front of stand-in upstreams, for end-to-end tests through the SDKs.

Stand-ins: ``primary`` and ``secondary`` are OpenAI-compatible stand-in servers and ``claude`` is
a stand-in Anthropic Messages API server (tests/standins/); none of them is the real provider.
The gateway itself is the real app, served by uvicorn on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from hybridgate.app import create_app
from hybridgate.config import GatewayConfig
from hybridgate.gateway import Gateway
from tests.servers import serve_in_thread
from tests.standins.anthropic_upstream import AnthropicStandIn, run_anthropic_standin
from tests.standins.openai_upstream import OpenAIStandIn, run_openai_standin

ENV = {"PRIMARY_KEY": "sk-primary", "SECONDARY_KEY": "sk-secondary", "CLAUDE_KEY": "sk-ant-test"}


@dataclass
class Rig:
    url: str
    gateway: Gateway
    primary: OpenAIStandIn
    secondary: OpenAIStandIn
    claude: AnthropicStandIn

    def ledger_rows(self) -> list[dict[str, Any]]:
        self.gateway.ledger.flush()
        return list(reversed(self.gateway.ledger.recent(1000)))

    def reset(self) -> None:
        self.primary.reset()
        self.secondary.reset()
        self.claude.drain()


def rig_config(primary: str, secondary: str, claude: str, ledger: Path) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "environment": "test",
            "server": {"max_body_bytes": 64 * 1024},
            "ledger": {"path": str(ledger), "flush_interval_s": 0.05, "cohort_labels": ["cohort-a"]},
            "backends": {
                "primary": {
                    "type": "openai_compat",
                    "base_url": primary,
                    "model": "gpt-4o-mini",
                    "api_key_env": "PRIMARY_KEY",
                    "provider": "openai",
                    "timeout_s": 5,
                },
                "secondary": {
                    "type": "openai_compat",
                    "base_url": secondary,
                    "model": "backup-model",
                    "api_key_env": "SECONDARY_KEY",
                    "local": True,
                    "timeout_s": 5,
                    "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
                },
                "claude": {
                    "type": "anthropic",
                    "base_url": claude,
                    "model": "claude-haiku-4-5",
                    "api_key_env": "CLAUDE_KEY",
                    "timeout_s": 5,
                },
            },
            "routes": {
                "auto": {"try": ["primary", "secondary"]},
                "primary": {"try": ["primary"]},
                "claude": {"try": ["claude"]},
                "local": {"try": ["secondary"]},
            },
            "rules": [{"name": "support-local", "feature": "support", "route": "local"}],
            "unknown_models": "reject",  # these tests check the 404 of a name nothing resolves
        }
    )


@pytest.fixture(scope="package")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    ledger = tmp_path_factory.mktemp("ledger") / "gw.db"
    with (
        run_openai_standin(api_key="sk-primary") as primary,
        run_openai_standin(api_key="sk-secondary", models=("backup-model",)) as secondary,
        run_anthropic_standin(api_key="sk-ant-test") as claude,
    ):
        config = rig_config(primary.base_url, secondary.base_url, claude.base_url, ledger)
        app = create_app(config, env=ENV)
        with serve_in_thread(app) as url:
            yield Rig(url, app.state.gateway, primary, secondary, claude)


@pytest.fixture
def gw(rig: Rig) -> Rig:
    rig.reset()
    return rig


@pytest.fixture
def oai(rig: Rig) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{rig.url}/v1", api_key="caller-key", max_retries=0) as client:
        yield client


@pytest.fixture
def claude(rig: Rig) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=rig.url, api_key="caller-key", max_retries=0) as client:
        yield client
