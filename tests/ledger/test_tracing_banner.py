"""``serve``'s start-up banner names where spans go (only when [telemetry] is configured)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hybridgate.cli import startup_banner
from hybridgate.config import GatewayConfig
from hybridgate.gateway import build_gateway


def banner(tmp_path: Path, **extra: object) -> str:
    config = GatewayConfig.model_validate(
        {
            "ledger": {"path": str(tmp_path / "gw.db")},
            "backends": {"up": {"type": "openai_compat", "model": "m"}},
            "routes": {"auto": {"try": ["up"]}},
            **extra,
        }
    )
    gateway = build_gateway(config, env={})
    try:
        return startup_banner(config, gateway, "127.0.0.1", 8787, 1)
    finally:
        asyncio.run(gateway.pipeline.recorder.close_tracer())  # stops the exporter's thread


def test_the_banner_says_where_spans_go(tmp_path: Path) -> None:
    telemetry = {"endpoint": "http://collector:4318/v1/traces", "sample_ratio": 0.25}
    text = banner(tmp_path, telemetry=telemetry)
    assert (
        "  traces:   OpenTelemetry spans to http://collector:4318/v1/traces (sample_ratio 0.25, "
        "service hybridgate; prompt and answer content off)"
    ) in text
    assert "traces:" not in banner(tmp_path)
