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

from hybridgate.backends.embedded.llama import packaged_model_file
from hybridgate.backends.pins import expected_sha256, remote_pins
from hybridgate.config import GatewayConfig
from hybridgate.errors import ConfigError
from hybridgate.gateway import build_gateway
from hybridgate.ledger.metrics import GatewayMetrics
from hybridgate.ledger.records import LedgerRecord
from hybridgate.types import ChatRequest, Message, RequestContext
from tests.standins.openai_upstream import Reply, run_openai_standin

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


def test_drift_is_logged_once_per_change_pinned_or_observed(caplog: pytest.LogCaptureFixture) -> None:
    pinned = "gpt-4o-2024-08-06"
    metrics = GatewayMetrics(CollectorRegistry(), pins={"cloud": pinned})

    def observe(backend: str, model: str, reported: str) -> None:
        metrics.observe(
            LedgerRecord(ts=1.0, request_id="r", backend=backend, model=model, reported_model=reported)
        )

    with caplog.at_level("WARNING", logger="hybridgate.drift"):
        observe("cloud", pinned, pinned)
        observe("other", "m", "m-2024-01")  # the first answer is what "other" is expected to stay
        for _ in range(3):
            observe("cloud", pinned, "gpt-4o-2024-11-20")
            observe("other", "m", "m-2024-06")
    drift_lines = [r.getMessage() for r in caplog.records if r.name == "hybridgate.drift"]
    assert len(drift_lines) == 2  # once per change, not once per response
    changes = {c["backend"]: c for c in metrics.drift.changes()}
    assert changes["cloud"] | {"first_seen": 0, "last_seen": 0} == {
        "backend": "cloud", "kind": "pinned", "expected": pinned, "reported": "gpt-4o-2024-11-20",
        "first_seen": 0, "last_seen": 0, "responses": 3,
    }  # fmt: skip
    assert changes["other"]["kind"] == "observed" and changes["other"]["expected"] == "m-2024-01"


async def test_drift_shows_in_healthz_and_usage(tmp_path: Path) -> None:
    import httpx
    from typer.testing import CliRunner

    from hybridgate.app import create_app
    from hybridgate.cli import app as cli_app

    pinned = "gpt-4o-mini-2024-07-18"
    with run_openai_standin(api_key="sk-test") as upstream:
        path = tmp_path / "gw.toml"
        path.write_text(
            f'[ledger]\npath = "{tmp_path / "l.db"}"\nflush_interval_s = 0.05\n\n'
            f'[backends.cloud]\ntype = "openai_compat"\nbase_url = "{upstream.base_url}"\n'
            f'model = "gpt-4o-mini"\napi_key_env = "KEY"\npin = "{pinned}"\n\n'
            '[routes.auto]\ntry = ["cloud"]\n'
        )
        from hybridgate.config import load_config

        application = create_app(load_config(path), env=ENV)
        gateway = application.state.gateway
        await gateway.start()
        upstream.script(Reply(model="gpt-4o-mini-2024-12-01"))  # the provider moved the snapshot
        ctx = RequestContext(request_id="r", started_at=time.time(), started_perf=time.perf_counter())
        await gateway.pipeline.complete(
            ChatRequest(model="auto", messages=[Message(role="user", content="hi")]), ctx
        )
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            health = (await client.get("/healthz")).json()
        gateway.ledger.flush()
        await gateway.aclose()
    (change,) = health["model_drift"]
    assert change["expected"] == pinned and change["reported"] == "gpt-4o-mini-2024-12-01"
    out = CliRunner().invoke(cli_app, ["usage", "-c", str(path)]).output
    assert out.startswith("UPSTREAM MODEL DRIFT:")
    assert (
        f"backend 'cloud' is pinned to '{pinned}' but 1 responses came from 'gpt-4o-mini-2024-12-01'" in out
    )
