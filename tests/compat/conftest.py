"""A gateway configured as a new user would, in front of stand-in upstreams, for the compat suite.

Stand-ins (tests/standins/), none of them the real provider: ``primary`` speaks OpenAI's chat
completions and serves ``gpt-4o-mini`` (provider openai), ``secondary`` is an OpenAI-compatible
local server in vLLM's dialect (``backup-model``), ``claude`` speaks Anthropic's Messages API.
Each records what it received. The gateway is the real app on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from hybridgate.app import create_app
from hybridgate.config import GatewayConfig
from tests.api.conftest import ENV, Rig
from tests.servers import serve_in_thread
from tests.standins.anthropic_upstream import run_anthropic_standin
from tests.standins.openai_upstream import run_openai_standin

ORIGIN = "https://app.example"
MAX_BODY = 64 * 1024


def compat_config(primary: str, secondary: str, claude: str, ledger: Path) -> GatewayConfig:
    backend = {"timeout_s": 5}
    return GatewayConfig.model_validate(
        {
            "environment": "test",
            "server": {"max_body_bytes": MAX_BODY, "cors_origins": [ORIGIN]},
            "ledger": {"path": str(ledger), "flush_interval_s": 0.05},
            "backends": {
                "primary": {
                    **backend,
                    "type": "openai_compat",
                    "base_url": primary,
                    "model": "gpt-4o-mini",
                    "api_key_env": "PRIMARY_KEY",
                    "provider": "openai",
                },
                "secondary": {
                    **backend,
                    "type": "openai_compat",
                    "base_url": secondary,
                    "model": "backup-model",
                    "api_key_env": "SECONDARY_KEY",
                    "local": True,
                },
                "claude": {
                    **backend,
                    "type": "anthropic",
                    "base_url": claude,
                    "model": "claude-haiku-4-5",
                    "api_key_env": "CLAUDE_KEY",
                },
            },
            "routes": {
                "auto": {"try": ["secondary", "primary"]},
                "claude": {"try": ["claude"]},
                "fast": {"try": ["secondary"]},
                "openai-only": {"try": ["primary"]},
            },
            "models": {"my-app-model": "claude", "team-*": "fast"},
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
        config = compat_config(primary.base_url, secondary.base_url, claude.base_url, ledger)
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
