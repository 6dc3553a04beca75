"""The OpenAI-compatible edge, driven by the official ``openai`` SDK over real HTTP.

Upstreams are stand-ins (see conftest.py); the gateway, httpx, SSE parsing and the SDK are real.
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam
from openai.types.shared_params import ResponseFormatJSONSchema

from tests.api.conftest import Rig
from tests.standins.openai_upstream import Drop, Fail, Garbage, Reply, ToolCall

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]
TOOLS: list[ChatCompletionToolParam] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def test_completion_passes_through_with_decision_headers(gw: Rig, oai: openai.OpenAI) -> None:
    raw = oai.chat.completions.with_raw_response.create(model="auto", messages=USER)
    reply = raw.parse()
    assert reply.choices[0].message.content == "echo: hello there"
    assert raw.headers["x-hybridgate-route"] == "auto"
    assert raw.headers["x-hybridgate-backend"] == "primary"
    assert raw.headers["x-hybridgate-rule"] == "default"
    assert float(raw.headers["x-hybridgate-cost-usd"]) > 0  # gpt-4o-mini is priced by genai-prices
    sent = gw.primary.last_request
    assert sent.body["model"] == "gpt-4o-mini"
    assert sent.headers["authorization"] == "Bearer sk-primary"  # the backend's key, not the caller's


def test_stream_with_usage_and_without(gw: Rig, oai: openai.OpenAI) -> None:
    chunks = list(
        oai.chat.completions.create(
            model="auto", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: hello there"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0
    plain = list(oai.chat.completions.create(model="auto", messages=USER, stream=True))
    assert all(c.usage is None for c in plain)
    assert "".join(c.choices[0].delta.content or "" for c in plain if c.choices) == text
    # the gateway always asks the upstream for usage, so the ledger has tokens either way
    rows = gw.ledger_rows()[-2:]
    assert all(r["stream"] and r["completion_tokens"] > 0 and r["ttft_ms"] is not None for r in rows)


def test_tool_calls_round_trip_streaming_and_not(gw: Rig, oai: openai.OpenAI) -> None:
    call = ToolCall(name="get_weather", arguments='{"city": "Paris"}')
    gw.primary.script(Reply(tool_calls=[call]), Reply(tool_calls=[call]))
    reply = oai.chat.completions.create(model="auto", messages=USER, tools=TOOLS)
    assert reply.choices[0].finish_reason == "tool_calls"
    calls = reply.choices[0].message.tool_calls or []
    assert calls and calls[0].type == "function"
    assert json.loads(calls[0].function.arguments) == {"city": "Paris"}
    stream = oai.chat.completions.create(model="auto", messages=USER, tools=TOOLS, stream=True)
    arguments = "".join(
        call.function.arguments or ""
        for c in stream
        if c.choices
        for call in c.choices[0].delta.tool_calls or []
        if call.function
    )
    assert json.loads(arguments) == {"city": "Paris"}
    assert gw.primary.last_request.body["tools"] == TOOLS


def test_fallback_to_next_backend_is_recorded(gw: Rig, oai: openai.OpenAI) -> None:
    gw.primary.script(Fail(status=503, type="server_error"))
    raw = oai.chat.completions.with_raw_response.create(model="auto", messages=USER)
    assert raw.headers["x-hybridgate-backend"] == "secondary"
    assert raw.parse().model == "backup-model"
    row = gw.ledger_rows()[-1]
    assert row["attempts"] == ["primary:error:server_error", "secondary:ok"]
    assert row["status"] == 200 and row["backend"] == "secondary"
    # secondary is priced from config: 1$/Mtok in, 2$/Mtok out
    expected = (row["prompt_tokens"] * 1.0 + row["completion_tokens"] * 2.0) / 1e6
    assert row["cost_usd"] == pytest.approx(expected)


def test_request_error_from_upstream_is_not_retried(gw: Rig, oai: openai.OpenAI) -> None:
    gw.primary.script(
        Fail(status=400, type="invalid_request_error", message="bad temperature", param="temperature")
    )
    with pytest.raises(openai.BadRequestError) as err:
        oai.chat.completions.create(model="auto", messages=USER)
    assert isinstance(err.value.body, dict) and err.value.body["param"] == "temperature"
    assert len(gw.secondary.requests) == 0


def test_feature_rule_and_route_override(gw: Rig, oai: openai.OpenAI) -> None:
    raw = oai.chat.completions.with_raw_response.create(
        model="auto", messages=USER, extra_headers={"x-hybridgate-feature": "support"}
    )
    assert (raw.headers["x-hybridgate-route"], raw.headers["x-hybridgate-rule"]) == (
        "local",
        "rule:support-local",
    )
    raw = oai.chat.completions.with_raw_response.create(
        model="auto", messages=USER, metadata={"feature": "support"}, user="cohort-a"
    )
    assert raw.headers["x-hybridgate-route"] == "local"
    row = gw.ledger_rows()[-1]
    assert (row["feature"], row["cohort"], row["rule"]) == ("support", "cohort-a", "rule:support-local")
    raw = oai.chat.completions.with_raw_response.create(
        model="auto", messages=USER, extra_headers={"x-hybridgate-route": "primary"}
    )
    assert raw.headers["x-hybridgate-rule"] == "override"


def test_concrete_backend_model(gw: Rig, oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(model="secondary/other-model", messages=USER)
    assert gw.secondary.last_request.body["model"] == "other-model"
    assert reply.choices[0].message.content == "echo: hello there"


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"model": "auto"}', 400, "messages"),
        (
            b'{"model": "auto", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}',
            400,
            "temperature",
        ),
        (b'{"model": "auto", "messages": [{"role": "wizard", "content": "x"}]}', 400, "role"),
        (
            b'{"model": "nope-99", "messages": [{"role": "user", "content": "x"}]}',
            404,
            "unknown model 'nope-99'",
        ),
        (
            b'{"model": "auto", "messages": [{"role": "user", "content": "' + b"x" * 70000 + b'"}]}',
            413,
            "over the limit",
        ),
    ],
)
def test_bad_input_gets_openai_error_and_a_ledger_row(
    gw: Rig, oai: openai.OpenAI, body: bytes, status: int, needle: str
) -> None:
    response = httpx.post(
        f"{gw.url}/v1/chat/completions",
        content=body,
        headers={"content-type": "application/json", "x-request-id": f"bad-{status}-{len(body)}"},
    )
    assert response.status_code == status
    error = response.json()["error"]
    assert needle in error["message"] and set(error) == {"message", "type", "param", "code"}
    assert "Traceback" not in response.text
    row = next(r for r in gw.ledger_rows() if r["request_id"] == f"bad-{status}-{len(body)}")
    assert row["status"] == status and row["error_type"] == error["type"]


def test_unknown_model_is_sdk_not_found(gw: Rig, oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match=r"configured routes|use one of"):
        oai.chat.completions.create(model="nope", messages=USER)


def test_upstream_garbage_everywhere_is_502(gw: Rig, oai: openai.OpenAI) -> None:
    gw.primary.script(Garbage())
    gw.secondary.script(Garbage())
    with pytest.raises(openai.InternalServerError) as err:
        oai.chat.completions.create(model="auto", messages=USER)
    assert err.value.status_code == 502
    row = gw.ledger_rows()[-1]
    assert row["status"] == 502 and row["attempts"] == [
        "primary:error:upstream_error",
        "secondary:error:upstream_error",
    ]


def test_upstream_drop_mid_stream_reaches_the_sdk_as_an_error(gw: Rig, oai: openai.OpenAI) -> None:
    gw.primary.script(Drop(after_chunks=2))
    stream = oai.chat.completions.create(model="primary", messages=USER, stream=True)
    received: list[str] = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
    assert received  # the first chunks did arrive before the failure
    row = gw.ledger_rows()[-1]
    assert row["stream"] and row["status"] == 502 and row["error_type"] == "upstream_error"


def test_models_health_and_metrics(gw: Rig, oai: openai.OpenAI) -> None:
    ids = {m.id for m in oai.models.list()}
    assert {"auto", "primary", "claude", "local", "primary/gpt-4o-mini", "claude/claude-haiku-4-5"} <= ids
    health = httpx.get(f"{gw.url}/healthz").json()
    assert health["status"] == "ok" and health["backends"]["secondary"]["local"] is True
    oai.chat.completions.create(model="auto", messages=USER)
    metrics = httpx.get(f"{gw.url}/metrics").text
    assert "hybridgate_requests_total{" in metrics and 'route="auto"' in metrics
    assert "hybridgate_request_duration_seconds_bucket" in metrics


def test_unknown_path_is_openai_404(gw: Rig, oai: openai.OpenAI) -> None:
    response = httpx.get(f"{gw.url}/v1/nothing")
    assert response.status_code == 404 and "no endpoint" in response.json()["error"]["message"]


def test_ledger_holds_a_hash_not_the_prompt(gw: Rig, oai: openai.OpenAI) -> None:
    oai.chat.completions.create(model="auto", messages=[{"role": "user", "content": "secret plan 42"}])
    row = gw.ledger_rows()[-1]
    assert row["prompt_text"] is None and len(row["prompt_hash"]) == 64
    assert "secret plan" not in json.dumps(row)


PERSON: ResponseFormatJSONSchema = {
    "type": "json_schema",
    "json_schema": {
        "name": "person",
        "schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
    },
}


def test_structured_output_failure_escalates_and_repair_passes(gw: Rig, oai: openai.OpenAI) -> None:
    gw.primary.script(
        Reply(content="Sure! The name is Ada."), Reply(content='```json\n{"name": "Ada",}\n```')
    )
    gw.secondary.script(Reply(content='{"name": "Ada"}'))
    reply = oai.chat.completions.create(model="auto", messages=USER, response_format=PERSON)
    assert json.loads(reply.choices[0].message.content or "") == {"name": "Ada"}
    assert gw.ledger_rows()[-1]["attempts"] == ["primary:check_failed:json_schema", "secondary:ok"]
    repaired = oai.chat.completions.create(model="auto", messages=USER, response_format=PERSON)
    assert json.loads(repaired.choices[0].message.content or "") == {"name": "Ada"}
    assert gw.ledger_rows()[-1]["attempts"] == ["primary:ok"]
    assert len(gw.secondary.requests) == 1  # the repaired answer needed no escalation


def test_a_bug_is_a_plain_500_and_still_a_ledger_row(gw: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug with a secret in its message: sk-live-123")

    monkeypatch.setattr(gw.gateway.pipeline._cascade, "complete", broken)
    response = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json={"model": "auto", "messages": USER},
        headers={"x-request-id": "bug-1"},
    )
    assert response.status_code == 500
    assert "sk-live" not in response.text and "Traceback" not in response.text
    row = next(r for r in gw.ledger_rows() if r["request_id"] == "bug-1")
    assert row["status"] == 500
