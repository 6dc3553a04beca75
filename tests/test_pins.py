"""Version pins: the embedded model's SHA-256, remote model ids sent upstream, the mismatch metric.

The embedded backend hashes the real packaged SmolLM2 GGUF (no model is loaded: hashing only).
The remote case runs against the OpenAI stand-in (tests/standins/openai_upstream.py, not OpenAI),
which reports back whatever model it was asked for.
"""

from __future__ import annotations

import hashlib
import time
from functools import cache
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from hybridgate.backends.embedded_llama import packaged_model_file
from hybridgate.config import GatewayConfig
from hybridgate.errors import ConfigError
from hybridgate.gateway import build_gateway
from hybridgate.ledger.metrics import GatewayMetrics
from hybridgate.ledger.records import LedgerRecord
from hybridgate.pins import expected_sha256, remote_pins
from hybridgate.types import ChatRequest, Message, RequestContext
from tests.standins.openai_upstream import run_openai_standin

ENV = {"HYBRIDGATE_HMAC_SECRET": "s", "KEY": "sk-test"}


@cache
def packaged_sha256() -> str:
    with packaged_model_file().open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def embedded_config(tmp_path: Path, pin: str) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "ledger": {"path": str(tmp_path / "l.db")},
            "backends": {"local": {"type": "embedded", "pin": pin}},
            "routes": {"auto": {"try": ["local"]}},
        }
    )


@pytest.mark.parametrize("form", ["plain", "prefixed"])
async def test_the_pinned_weights_start(tmp_path: Path, form: str) -> None:
    pin = packaged_sha256() if form == "plain" else "sha256:" + packaged_sha256().upper()
    gateway = build_gateway(embedded_config(tmp_path, pin), ENV)
    await gateway.start()
    await gateway.aclose()


async def test_other_weights_refuse_to_start(tmp_path: Path) -> None:
    wrong = "0" * 64
    gateway = build_gateway(embedded_config(tmp_path, wrong), ENV)
    with pytest.raises(ConfigError) as caught:
        await gateway.start()
    message = caught.value.message
    assert message.startswith("backend 'local': model file ")
    assert f"has SHA-256 {packaged_sha256()}, but the config pins {wrong}" in message
    assert not (tmp_path / "l.db").exists()  # refused before the ledger opened
    await gateway.aclose()


def test_an_embedded_pin_must_be_a_hash() -> None:
    with pytest.raises(ConfigError, match=r"backend 'local': pin 'v1' is not a SHA-256 \(64 hex digits\)"):
        expected_sha256("local", "v1")


async def test_a_remote_pin_is_the_model_sent_upstream(tmp_path: Path) -> None:
    pinned = "gpt-4o-mini-2024-07-18"
    with run_openai_standin(api_key="sk-test") as upstream:
        config = GatewayConfig.model_validate(
            {
                "ledger": {"path": str(tmp_path / "l.db"), "flush_interval_s": 0.05},
                "backends": {
                    "cloud": {
                        "type": "openai_compat",
                        "base_url": upstream.base_url,
                        "model": "gpt-4o-mini",
                        "api_key_env": "KEY",
                        "pin": pinned,
                    },
                    "other": {
                        "type": "openai_compat",
                        "base_url": upstream.base_url,
                        "model": "m2",
                        "api_key_env": "KEY",
                    },
                },
                "routes": {"auto": {"try": ["cloud"]}},
            }
        )
        assert remote_pins(config) == {"cloud": pinned}
        gateway = build_gateway(config, ENV)
        await gateway.start()
        ctx = RequestContext(request_id="r", started_at=time.time(), started_perf=time.perf_counter())
        done = await gateway.pipeline.complete(
            ChatRequest(model="auto", messages=[Message(role="user", content="hi")]), ctx
        )
        await gateway.aclose()
    assert upstream.last_request.body["model"] == pinned
    assert done.model == pinned and done.response.model == pinned
    # The stand-in reports what it was asked for, so nothing was counted as a mismatch.
    assert gateway.metrics.registry.get_sample_value("hybridgate_version_mismatch_total") is None


def mismatches(metrics: GatewayMetrics, **labels: str) -> float | None:
    return metrics.registry.get_sample_value("hybridgate_version_mismatch_total", labels)


def test_the_metric_counts_responses_from_another_version() -> None:
    pinned = "gpt-4o-2024-08-06"
    metrics = GatewayMetrics(CollectorRegistry(), pins={"cloud": pinned})

    def observe(backend: str, model: str, reported: str | None) -> None:
        metrics.observe(
            LedgerRecord(ts=0.0, request_id="r", backend=backend, model=model, reported_model=reported)
        )

    observe("cloud", pinned, pinned)
    observe("cloud", pinned, None)  # a failed request reports nothing
    observe("cloud", "gpt-4o", "gpt-4o-2024-11-20")  # the caller asked for another model by name
    observe("local", "SmolLM2", "SmolLM2-135M")  # no pin on this backend
    assert mismatches(metrics, backend="cloud", pinned=pinned, reported="gpt-4o-2024-11-20") is None
    observe("cloud", pinned, "gpt-4o-2024-11-20")
    observe("cloud", pinned, "gpt-4o-2024-11-20")
    assert mismatches(metrics, backend="cloud", pinned=pinned, reported="gpt-4o-2024-11-20") == 2.0
    assert b'hybridgate_version_mismatch_total{backend="cloud"' in metrics.render()[0]
