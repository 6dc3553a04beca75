"""Fixtures for eval tests: a gateway config in front of a stand-in OpenAI upstream.

Stand-in: ``tests/standins/openai_upstream.py`` serves the documented chat-completions wire format
on 127.0.0.1; it is not OpenAI. Tests script its replies in order (``standin.script(...)``) and
run cases with concurrency 1 so each scripted reply meets the case it was written for.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hybridgate.config import GatewayConfig
from tests.standins.openai_upstream import OpenAIStandIn, run_openai_standin

ENV = {"STANDIN_KEY": "sk-standin", "HYBRIDGATE_HMAC_SECRET": "test-secret"}


def standin_config(base_url: str, ledger: Path, **extra: object) -> GatewayConfig:
    """Routes: ``cloud`` (gpt-4o-mini, priced by genai-prices), ``cheap`` (priced in config),
    ``auto`` (cheap, then cloud) as the default route."""
    common = {"type": "openai_compat", "base_url": base_url, "api_key_env": "STANDIN_KEY", "timeout_s": 5}
    data: dict[str, object] = {
        "ledger": {"path": str(ledger), "flush_interval_s": 0.05},
        "backends": {
            "cloud": {**common, "model": "gpt-4o-mini", "provider": "openai"},
            "cheap": {
                **common,
                "model": "backup-model",
                "price": {"input_per_mtok": 1, "output_per_mtok": 2},
            },
        },
        "routes": {
            "cloud": {"try": ["cloud"]},
            "cheap": {"try": ["cheap"]},
            "auto": {"try": ["cheap", "cloud"]},
        },
        **extra,
    }
    return GatewayConfig.model_validate(data)


@pytest.fixture(scope="package")
def upstream() -> Iterator[OpenAIStandIn]:
    with run_openai_standin(api_key="sk-standin", models=("gpt-4o-mini", "backup-model")) as standin:
        yield standin


@pytest.fixture
def standin(upstream: OpenAIStandIn) -> OpenAIStandIn:
    upstream.reset()
    return upstream


@pytest.fixture
def config(standin: OpenAIStandIn, tmp_path: Path) -> GatewayConfig:
    return standin_config(standin.base_url, tmp_path / "ledger.db")


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
