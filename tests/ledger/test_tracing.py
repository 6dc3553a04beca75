"""[telemetry]: one span per request, exported by OTLP/HTTP, read back from a receiver on loopback.

The receiver is a stand-in for an OpenTelemetry collector (tests/otlp_receiver.py: it decodes
the protobuf ``ExportTraceServiceRequest`` with opentelemetry-proto). The upstreams are
stand-ins too: an OpenAI-compatible one (not OpenAI) and an Anthropic one (not Anthropic).
Requests go through the official openai and anthropic SDKs over real HTTP.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from pydantic import ValidationError

from hybridgate.app import create_app
from hybridgate.config import GatewayConfig
from hybridgate.errors import ConfigError
from hybridgate.gateway import Gateway
from tests.hung_server import HungServer
from tests.otlp_receiver import OtlpReceiver, run_otlp_receiver
from tests.servers import serve_in_thread
from tests.standins.anthropic_upstream import AnthropicStandIn, run_anthropic_standin
from tests.standins.openai_embeddings import run_embeddings_standin
from tests.standins.openai_upstream import Fail, OpenAIStandIn, Reply, run_openai_standin

ConfigFor = Callable[[str, str, Path], GatewayConfig]
SERVER = 2  # the proto's SPAN_KIND_SERVER
STATUS_ERROR = 2
PII_TEXT = "Please mail the invoice to jane.roe@example.com today"


@dataclass
class Rig:
    url: str
    gateway: Gateway
    receiver: OtlpReceiver
    cloud: OpenAIStandIn
    claude: AnthropicStandIn

    def openai(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key="k", max_retries=0)


def gateway_config(
    cloud: str, claude: str, ledger: Path, telemetry: dict[str, Any], log_prompts: bool = False, **extra: Any
) -> GatewayConfig:
    remote = {"type": "openai_compat", "model": "gpt-4o-mini", "timeout_s": 5, "provider": "openai"}
    return GatewayConfig.model_validate(
        {
            "ledger": {"path": str(ledger), "flush_interval_s": 0.05, "log_prompts": log_prompts},
            "backends": {
                "flaky": {**remote, "base_url": cloud},
                "cloud": {**remote, "base_url": cloud},
                "claude": {
                    "type": "anthropic",
                    "base_url": claude,
                    "model": "claude-haiku-4-5",
                    "api_key_env": "CLAUDE_KEY",
                    "timeout_s": 5,
                },
            },
            "routes": {
                "auto": {"try": ["cloud"]},
                "fallback": {"try": ["flaky", "cloud"]},
                "claude": {"try": ["claude"]},
            },
            "rules": [{"name": "support", "feature": "support", "route": "auto"}],
            "telemetry": {"export_interval_s": 0.05, **telemetry},
            **extra,
        }
    )


ENV = {"CLAUDE_KEY": "sk-ant-test", "OTLP_TOKEN": "Bearer t0ken"}


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    with run_otlp_receiver() as receiver:

        def config(cloud: str, claude: str, ledger: Path) -> GatewayConfig:
            telemetry = {"endpoint": receiver.url, "headers_env": {"authorization": "OTLP_TOKEN"}}
            return gateway_config(cloud, claude, ledger, telemetry)

        with running_with(receiver, config, tmp_path_factory.mktemp("otel")) as rig:
            yield rig


@contextmanager
def running_with(receiver: OtlpReceiver, config_for: ConfigFor, tmp: Path) -> Iterator[Rig]:
    with run_openai_standin() as cloud, run_anthropic_standin(api_key="sk-ant-test") as claude:
        app = create_app(config_for(cloud.base_url, claude.base_url, tmp / "gw.db"), env=ENV)
        with serve_in_thread(app) as url:
            yield Rig(url, app.state.gateway, receiver, cloud, claude)


def new_id() -> str:
    return f"req-{uuid.uuid4().hex[:12]}"


def test_chat_span_has_the_genai_conventions_and_the_gateway_decision(rig: Rig) -> None:
    request_id = new_id()
    before = time.time_ns()
    with rig.openai() as client:
        reply = client.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": "Say hi to the team"}],
            temperature=0.3,
            top_p=0.9,
            max_tokens=40,
            stop=["END"],
            seed=7,
            extra_headers={"x-request-id": request_id, "x-hybridgate-feature": "support"},
        )
    after = time.time_ns()
    span = rig.receiver.wait_for(request_id)
    a = span.attributes
    assert span.name == "chat auto" and span.kind == SERVER
    assert before <= span.start_ns <= span.end_ns <= after
    assert span.resource["service.name"] == "hybridgate"
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert "gen_ai.system" not in a  # replaced by gen_ai.provider.name in the current conventions
    assert a["gen_ai.request.model"] == "auto"
    assert a["gen_ai.response.model"] == reply.model
    assert a["gen_ai.response.id"] == reply.id
    assert a["gen_ai.response.finish_reasons"] == ["stop"]
    assert reply.usage is not None
    assert a["gen_ai.usage.input_tokens"] == reply.usage.prompt_tokens
    assert a["gen_ai.usage.output_tokens"] == reply.usage.completion_tokens
    assert a["gen_ai.request.temperature"] == 0.3 and a["gen_ai.request.top_p"] == 0.9
    assert a["gen_ai.request.max_tokens"] == 40 and a["gen_ai.request.seed"] == 7
    assert a["gen_ai.request.stop_sequences"] == ["END"]
    assert a["hybridgate.route"] == "auto" and a["hybridgate.rule"] == "rule:support"
    assert a["hybridgate.decision.reasons"]
    assert a["hybridgate.feature"] == "support" and a["hybridgate.traffic"] == "live"
    assert a["hybridgate.backend"] == "cloud" and a["hybridgate.attempts"] == ["cloud:ok"]
    assert a["hybridgate.cost_usd"] > 0 and a["http.response.status_code"] == 200
    assert len(a["hybridgate.prompt_hash"]) == 64
    # content is off by default: no prompt or answer text anywhere in the span
    assert "gen_ai.input.messages" not in a and "gen_ai.output.messages" not in a
    assert not any("Say hi" in str(value) for value in a.values())
    assert [name for name, _, _ in span.events] == ["hybridgate.attempt"]
    assert span.events[0][2] == {
        "hybridgate.backend": "cloud",
        "hybridgate.outcome": "ok",
        "hybridgate.tier": "cloud",
    }
    # the exporter sent the configured header, read from its environment variable
    assert rig.receiver.headers[-1]["authorization"] == "Bearer t0ken"


def test_streamed_chat_span_ends_when_the_stream_ends(rig: Rig) -> None:
    request_id = new_id()
    rig.cloud.script(Reply(content="one two three four five", chunk_delay_s=0.05))
    with rig.openai() as client:
        stream = client.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": "count"}],
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={"x-request-id": request_id},
        )
        first_chunk_at = 0
        usage = None
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                first_chunk_at = first_chunk_at or time.time_ns()
            usage = chunk.usage or usage
        ended_at = time.time_ns()
    span = rig.receiver.wait_for(request_id)
    a = span.attributes
    # the stand-in waits 50 ms before each chunk after the first: the span covers them all
    assert span.end_ns - first_chunk_at >= 150_000_000
    assert span.end_ns <= ended_at
    assert a["hybridgate.stream"] is True and a["gen_ai.request.stream"] is True
    assert a["gen_ai.response.finish_reasons"] == ["stop"]
    assert usage is not None and a["gen_ai.usage.output_tokens"] == usage.completion_tokens
    first_token = [ts for name, ts, _ in span.events if name == "hybridgate.first_token"]
    assert len(first_token) == 1 and span.start_ns < first_token[0] <= first_chunk_at


def test_anthropic_messages_span_names_the_anthropic_provider(rig: Rig) -> None:
    request_id = new_id()
    with anthropic.Anthropic(base_url=rig.url, api_key="k", max_retries=0) as client:
        message = client.messages.create(
            model="claude",
            max_tokens=64,
            messages=[{"role": "user", "content": "hello there"}],
            extra_headers={"x-request-id": request_id},
        )
    a = rig.receiver.wait_for(request_id).attributes
    assert a["hybridgate.api"] == "anthropic" and a["gen_ai.provider.name"] == "anthropic"
    assert a["gen_ai.request.model"] == "claude" and a["gen_ai.response.model"] == message.model
    assert a["gen_ai.usage.input_tokens"] == message.usage.input_tokens
    assert a["gen_ai.usage.output_tokens"] == message.usage.output_tokens
    assert a["gen_ai.request.max_tokens"] == 64
    assert a["gen_ai.response.finish_reasons"] == ["stop"]  # in the pipeline's OpenAI vocabulary


def test_fallback_attempts_are_events_and_errors_set_the_status(rig: Rig) -> None:
    rig.cloud.script(Fail(status=500, type="server_error"))
    request_id = new_id()
    with rig.openai() as client:
        client.chat.completions.create(
            model="fallback",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-request-id": request_id},
        )
        rig.cloud.script(Fail(status=400, type="invalid_request_error", message="bad"))
        failed_id = new_id()
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(
                model="auto",
                messages=[{"role": "user", "content": "hi"}],
                extra_headers={"x-request-id": failed_id},
            )
    span = rig.receiver.wait_for(request_id)
    attempts = [attrs for name, _, attrs in span.events if name == "hybridgate.attempt"]
    assert [(e["hybridgate.backend"], e["hybridgate.outcome"]) for e in attempts] == [
        ("flaky", "error"),
        ("cloud", "ok"),
    ]
    assert attempts[0]["hybridgate.detail"] == "server_error"  # the upstream's error type
    assert span.status_code != STATUS_ERROR
    failed = rig.receiver.wait_for(failed_id)
    assert failed.status_code == STATUS_ERROR
    assert failed.attributes["http.response.status_code"] == 400
    assert failed.attributes["error.type"] == "invalid_request_error"


def test_a_request_refused_before_routing_still_has_its_span(rig: Rig) -> None:
    request_id = new_id()
    with rig.openai() as client, pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="auto", messages=[], extra_headers={"x-request-id": request_id})
    span = rig.receiver.wait_for(request_id)
    assert span.status_code == STATUS_ERROR
    assert span.attributes["http.response.status_code"] == 400
    assert "gen_ai.provider.name" not in span.attributes and "hybridgate.backend" not in span.attributes


def test_a_callers_traceparent_makes_the_span_its_child(rig: Rig) -> None:
    trace_id, parent_id, request_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", new_id()
    with rig.openai() as client:
        client.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-request-id": request_id, "traceparent": f"00-{trace_id}-{parent_id}-01"},
        )
    span = rig.receiver.wait_for(request_id)
    assert (span.trace_id, span.parent_span_id) == (trace_id, parent_id)


def test_content_only_with_log_prompts_and_capture_and_never_with_pii(tmp_path: Path) -> None:
    def config(cloud: str, claude: str, ledger: Path) -> GatewayConfig:
        telemetry = {"endpoint": receiver.url, "capture_content": True}
        privacy = {"policy": "allow", "ner_model": None}
        return gateway_config(cloud, claude, ledger, telemetry, log_prompts=True, privacy=privacy)

    clean_id, pii_id, stream_id = new_id(), new_id(), new_id()
    with (
        run_otlp_receiver() as receiver,
        running_with(receiver, config, tmp_path) as rig,
        rig.openai() as client,
    ):
        for request_id, text in ((clean_id, "What is the capital of France?"), (pii_id, PII_TEXT)):
            client.chat.completions.create(
                model="auto",
                messages=[{"role": "user", "content": text}],
                extra_headers={"x-request-id": request_id},
            )
        rig.cloud.script(Reply(content="Paris, of course"))
        chunks = client.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": "And of Spain?"}],
            stream=True,
            extra_headers={"x-request-id": stream_id},
        )
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Paris, of course"
        clean, pii, streamed = (receiver.wait_for(i).attributes for i in (clean_id, pii_id, stream_id))
    assert json.loads(clean["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "What is the capital of France?"}]}
    ]
    [answer] = json.loads(clean["gen_ai.output.messages"])
    assert answer["parts"][0]["content"] == "echo: What is the capital of France?"
    assert json.loads(streamed["gen_ai.output.messages"])[0]["parts"][0]["content"] == "Paris, of course"
    # the privacy screen found an e-mail address: no content, only what the ledger keeps
    assert "gen_ai.input.messages" not in pii and "gen_ai.output.messages" not in pii
    assert not any("jane.roe" in str(value) for value in pii.values())
    assert pii["hybridgate.privacy.pii"] and "EMAIL" in pii["hybridgate.privacy.pii"]


def test_capture_content_without_log_prompts_captures_nothing(tmp_path: Path) -> None:
    def config(cloud: str, claude: str, ledger: Path) -> GatewayConfig:
        return gateway_config(cloud, claude, ledger, {"endpoint": receiver.url, "capture_content": True})

    request_id = new_id()
    with (
        run_otlp_receiver() as receiver,
        running_with(receiver, config, tmp_path) as rig,
        rig.openai() as client,
    ):
        client.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-request-id": request_id},
        )
        attributes = receiver.wait_for(request_id).attributes
    assert "gen_ai.input.messages" not in attributes and "gen_ai.output.messages" not in attributes


def test_a_hung_receiver_neither_fails_nor_slows_requests(tmp_path: Path) -> None:
    """The receiver accepts connections and never answers: each export waits its timeout_s (3 s)
    in the SDK's thread, while requests go on; the failure is logged once."""
    hung = HungServer()

    def config(cloud: str, claude: str, ledger: Path) -> GatewayConfig:
        telemetry = {"endpoint": f"http://127.0.0.1:{hung.port}/v1/traces", "timeout_s": 3}
        return gateway_config(cloud, claude, ledger, telemetry)

    try:
        with running_with(OtlpReceiver(), config, tmp_path) as rig, rig.openai() as client:
            ask(client)
            deadline = time.monotonic() + 5
            while hung.connections == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert hung.connections >= 1  # an export is in flight, and hangs
            slowest = max(ask(client) for _ in range(10))
            assert slowest < 1.5  # far below the 3 s a request would wait if it waited for export
    finally:
        hung.close()


def test_a_receiver_that_is_down_is_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    def config(cloud: str, claude: str, ledger: Path) -> GatewayConfig:
        telemetry = {"endpoint": f"http://127.0.0.1:{port}/v1/traces", "timeout_s": 0.2}
        return gateway_config(cloud, claude, ledger, telemetry)

    caplog.set_level(logging.WARNING)
    with running_with(OtlpReceiver(), config, tmp_path) as rig, rig.openai() as client:
        assert rig.gateway.pipeline.recorder.tracer is not None
        exporter = rig.gateway.pipeline.recorder.tracer.exporter
        deadline = time.monotonic() + 10
        while getattr(exporter, "failures", 0) < 3 and time.monotonic() < deadline:
            ask(client)
            time.sleep(0.05)
        assert getattr(exporter, "failures", 0) >= 3
        health = httpx.get(f"{rig.url}/healthz").json()
        assert health["status"] == "degraded"
        assert 'hybridgate_degraded{component="telemetry"} 1.0' in httpx.get(f"{rig.url}/metrics").text
        assert health["degraded"]["telemetry"].startswith(
            f"OTLP export to http://127.0.0.1:{port}/v1/traces failing"
        )
    failures = [r for r in caplog.records if "OTLP" in r.getMessage() or r.name.startswith("opentelemetry")]
    assert len(failures) == 1, [r.getMessage() for r in failures]
    assert (
        failures[0].name == "hybridgate.telemetry" and "requests are not affected" in failures[0].getMessage()
    )


def ask(client: openai.OpenAI) -> float:
    started = time.perf_counter()
    reply = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "echo: hi"
    return time.perf_counter() - started


def test_config_rejects_unknown_keys_and_bad_values() -> None:
    base = {"backends": {"b": {"type": "openai_compat", "model": "m"}}, "routes": {"auto": {"try": ["b"]}}}
    for telemetry in ({"endpoit": "http://x"}, {"sample_ratio": 1.5}, {"endpoint": "collector:4318"}):
        with pytest.raises(ValidationError):
            GatewayConfig.model_validate({**base, "telemetry": telemetry})
    assert GatewayConfig.model_validate(base).telemetry is None  # off by default


def test_a_header_variable_that_is_not_set_is_a_config_error() -> None:
    config = GatewayConfig.model_validate(
        {
            "backends": {"b": {"type": "openai_compat", "model": "m"}},
            "routes": {"auto": {"try": ["b"]}},
            "telemetry": {"headers_env": {"authorization": "NOT_SET_ANYWHERE"}},
        }
    )
    with pytest.raises(ConfigError, match="NOT_SET_ANYWHERE"):
        create_app(config, env={})


def test_an_embeddings_request_has_an_embeddings_span(tmp_path: Path) -> None:
    """The embedder is a stand-in for an on-premises OpenAI-compatible embeddings server
    (tests/standins/openai_embeddings.py)."""

    def config(cloud: str, claude: str, ledger: Path) -> GatewayConfig:
        embedder = {
            "type": "openai_compat",
            "base_url": embeddings.base_url,
            "model": "text-embedding-3-small",
        }
        return gateway_config(
            cloud,
            claude,
            ledger,
            {"endpoint": receiver.url},
            embeddings={
                "backends": {"cloud": {**embedder, "provider": "vllm", "local": True}},
                "routes": {"vectors": {"try": ["cloud"]}},
                "default_route": "vectors",
            },
        )

    request_id = new_id()
    with (
        run_embeddings_standin() as embeddings,
        run_otlp_receiver() as receiver,
        running_with(receiver, config, tmp_path) as rig,
        rig.openai() as client,
    ):
        result = client.embeddings.create(
            model="vectors", input=["one", "two"], extra_headers={"x-request-id": request_id}
        )
        span = receiver.wait_for(request_id)
    a = span.attributes
    assert span.name == "embeddings text-embedding-3-small"
    # the embedder shares its name with a chat backend (openai, cloud): told apart
    assert a["gen_ai.operation.name"] == "embeddings" and a["gen_ai.provider.name"] == "vllm"
    assert a["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens > 0
    assert a["hybridgate.api"] == "embeddings" and a["hybridgate.backend"] == "cloud"
    attempts = [attrs for name, _, attrs in span.events if name == "hybridgate.attempt"]
    assert [(e["hybridgate.backend"], e["hybridgate.tier"]) for e in attempts] == [("cloud", "local")]
