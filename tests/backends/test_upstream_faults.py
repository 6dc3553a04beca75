"""Hostile and broken upstreams, end to end through the official SDKs (issue 14, findings 5 and 8).

The gateway is the real app on 127.0.0.1. Its upstreams are stand-ins, none of them a provider:
``flaky`` and ``backup`` speak the OpenAI wire format (tests/standins/openai_upstream.py) and
``flaky`` is scripted to send garbage; ``raw`` (and ``rawclaude``, an Anthropic backend pointed at
the same listener) answers raw bytes (tests/standins/raw_upstream.py): status 999, a redirect, a
429 with Retry-After. ``canary`` is a listener nobody may ever reach.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import orjson
import pytest

from hybridgate.app import create_app
from hybridgate.config import GatewayConfig
from hybridgate.gateway import Gateway
from tests.servers import serve_in_thread
from tests.standins.openai_upstream import Fail, Garbage, OpenAIStandIn, run_openai_standin
from tests.standins.raw_upstream import RawUpstream, http_response, run_raw_upstream

FLAKY_KEY = "sk-proj-standin-0123456789abcdef"
HI: list[Any] = [{"role": "user", "content": "hi"}]


@dataclass
class Rig:
    url: str
    gateway: Gateway
    flaky: OpenAIStandIn
    backup: OpenAIStandIn
    raw: RawUpstream
    canary: RawUpstream

    def last_row(self) -> dict[str, Any]:
        self.gateway.ledger.flush()
        return dict(self.gateway.ledger.recent(1)[0])


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    ledger = tmp_path_factory.mktemp("faults") / "gw.db"
    with (
        run_openai_standin(api_key=FLAKY_KEY) as flaky,
        run_openai_standin() as backup,
        run_raw_upstream() as raw,
        run_raw_upstream() as canary,
    ):
        # Breakers that never open: every test here fails a backend on purpose.
        remote = {"type": "openai_compat", "model": "m", "timeout_s": 5, "breaker_min_requests": 10_000}
        config = GatewayConfig.model_validate(
            {
                "ledger": {
                    "path": str(ledger),
                    "flush_interval_s": 0.05,
                    # cohorts kept as sent (others are stored as HMACs): the tests find rows by them
                    "cohort_labels": ["absurd", *(f"tenant-{i}" for i in range(4))],
                },
                "backends": {
                    "flaky": {**remote, "base_url": flaky.base_url, "api_key_env": "FLAKY_KEY"},
                    "backup": {**remote, "base_url": backup.base_url},
                    "raw": {**remote, "base_url": raw.base_url, "api_key_env": "FLAKY_KEY"},
                    "rawclaude": {
                        "type": "anthropic",
                        "base_url": raw.base_url.removesuffix("/v1"),
                        "model": "claude-x",
                        "api_key_env": "FLAKY_KEY",
                        "timeout_s": 5,
                        "breaker_min_requests": 10_000,
                    },
                    "dead": {**remote, "base_url": "http://127.0.0.1:9/internal/v1"},  # discard port
                },
                "routes": {
                    "auto": {"try": ["flaky", "backup"]},
                    "alone": {"try": ["flaky"]},
                    "backup": {"try": ["backup"]},
                    "raw": {"try": ["raw", "backup"]},
                    "rawalone": {"try": ["raw"]},
                    "rawclaude": {"try": ["rawclaude", "backup"]},
                    "dead": {"try": ["dead"]},
                },
            }
        )
        app = create_app(config, env={"FLAKY_KEY": FLAKY_KEY})
        with serve_in_thread(app) as url:
            yield Rig(url, app.state.gateway, flaky, backup, raw, canary)


@pytest.fixture
def gw(rig: Rig) -> Rig:
    rig.flaky.reset()
    rig.backup.reset()
    rig.raw.requests.clear()
    rig.canary.requests.clear()
    return rig


@pytest.fixture
def oai(rig: Rig) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{rig.url}/v1", api_key="caller-key", max_retries=0) as client:
        yield client


def json_garbage(body: object) -> Garbage:
    return Garbage(body=orjson.dumps(body), content_type="application/json")


def sse_garbage(*events: object) -> Garbage:
    frames = b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events)
    return Garbage(body=frames + b"data: [DONE]\n\n", content_type="text/event-stream")


GOOD_CHUNK = {
    "id": "c1",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "m",
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": "partial"}, "finish_reason": None}],
}
GARBAGE_ANSWERS = [
    {"id": "x", "object": "chat.completion", "model": "m", "choices": [1, 2]},
    {
        "id": "x",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": "many", "completion_tokens": 1},
    },
    {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": "hello"}]},
]


# -- finding 5: garbage answers and chunks fall back like a 5xx ----------------------------------


@pytest.mark.parametrize("garbage", GARBAGE_ANSWERS, ids=["choices-ints", "usage-string", "message-string"])
def test_a_malformed_answer_falls_back_to_the_next_backend(
    gw: Rig, oai: openai.OpenAI, garbage: dict[str, Any]
) -> None:
    gw.flaky.script(json_garbage(garbage))
    reply = oai.chat.completions.create(model="auto", messages=HI)
    assert reply.choices[0].message.content == "echo: hi"
    row = gw.last_row()
    assert (row["status"], row["attempts"]) == (200, ["flaky:error:upstream_error", "backup:ok"])


def test_a_malformed_answer_with_nothing_to_fall_back_on_is_a_502(gw: Rig, oai: openai.OpenAI) -> None:
    gw.flaky.script(json_garbage(GARBAGE_ANSWERS[0]))
    with pytest.raises(openai.InternalServerError) as caught:
        oai.chat.completions.create(model="alone", messages=HI)
    assert caught.value.status_code == 502
    assert isinstance(caught.value.body, dict) and caught.value.body["code"] == "bad_upstream_response"
    assert (gw.last_row()["status"], gw.last_row()["error_type"]) == (502, "upstream_error")


@pytest.mark.parametrize("first", [{"choices": "abc"}, {"choices": [{"delta": "abc"}]}, {"usage": "lots"}])
def test_a_garbage_first_chunk_falls_back_to_the_next_backend(
    gw: Rig, oai: openai.OpenAI, first: dict[str, Any]
) -> None:
    gw.flaky.script(sse_garbage(first))
    stream = oai.chat.completions.create(model="auto", messages=HI, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "echo: hi"
    row = gw.last_row()
    assert (row["status"], row["attempts"]) == (200, ["flaky:error:upstream_error", "backup:ok"])


def test_a_stream_that_turns_to_garbage_ends_with_an_error_and_a_502_row(gw: Rig, oai: openai.OpenAI) -> None:
    gw.flaky.script(sse_garbage(GOOD_CHUNK, {"choices": "abc"}))
    received: list[str] = []
    with pytest.raises(openai.APIError, match="malformed stream chunk"):
        for chunk in oai.chat.completions.create(model="alone", messages=HI, stream=True):
            received.append(chunk.choices[0].delta.content or "")
    assert received == ["partial"]
    row = gw.last_row()
    assert (row["status"], row["error_type"]) == (502, "upstream_error")  # not 499 client_closed


def test_an_unknown_upstream_status_is_a_502(gw: Rig, oai: openai.OpenAI) -> None:
    gw.raw.response = http_response(999, b'{"error": {"message": "what", "type": "odd"}}')
    with pytest.raises(openai.InternalServerError) as caught:
        oai.chat.completions.create(model="rawalone", messages=HI)
    assert caught.value.status_code == 502
    assert gw.last_row()["status"] == 502
    reply = oai.chat.completions.create(model="raw", messages=HI)  # and it falls back
    assert reply.choices[0].message.content == "echo: hi"


# -- finding 10: an absurd token count costs nobody their ledger row ----------------------------


def test_an_absurd_token_count_is_clamped_and_the_batch_around_it_kept(gw: Rig, oai: openai.OpenAI) -> None:
    absurd = {
        "id": "x",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 18446744073709551615, "completion_tokens": 1, "total_tokens": 0},
    }
    gw.flaky.script(json_garbage(absurd))
    tenants = [f"tenant-{i}" for i in range(4)]
    oai.chat.completions.create(model="alone", messages=HI, user="absurd")
    for tenant in tenants:  # recorded in the same ledger batch (flush_interval_s 0.05)
        oai.chat.completions.create(model="backup", messages=HI, user=tenant)
    gw.gateway.ledger.flush()
    rows = {row["cohort"]: row for row in gw.gateway.ledger.recent(5)}
    assert set(rows) == {"absurd", *tenants}
    assert rows["absurd"]["prompt_tokens"] == 2**63 - 1


# -- finding 8: egress hygiene -------------------------------------------------------------------


@pytest.mark.parametrize("route", ["raw", "rawclaude"])
@pytest.mark.parametrize("streaming", [False, True])
def test_a_redirect_is_not_followed(gw: Rig, oai: openai.OpenAI, route: str, streaming: bool) -> None:
    target = gw.canary.base_url + ("/messages" if route == "rawclaude" else "/chat/completions")
    gw.raw.response = http_response(307, headers={"location": target})
    if streaming:
        chunks = oai.chat.completions.create(model=route, messages=HI, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        text = oai.chat.completions.create(model=route, messages=HI).choices[0].message.content or ""
    assert text == "echo: hi"  # the backup answered
    assert gw.canary.requests == []  # neither the prompt nor the key went to the redirect's target
    assert len(gw.raw.requests) == 1
    assert gw.last_row()["attempts"] == [f"{route}:error:upstream_error", "backup:ok"]


@pytest.mark.parametrize("streaming", [False, True])
def test_an_upstream_401_is_a_502_without_the_providers_key_hint(
    gw: Rig, oai: openai.OpenAI, streaming: bool
) -> None:
    hint = "Incorrect API key provided: sk-proj-****cdef. You can find your API key at https://x/keys."
    gw.flaky.script(Fail(status=401, type="invalid_request_error", message=hint, code="invalid_api_key"))
    with pytest.raises(openai.InternalServerError) as caught:
        if streaming:
            list(oai.chat.completions.create(model="alone", messages=HI, stream=True))
        else:
            oai.chat.completions.create(model="alone", messages=HI)
    assert caught.value.status_code == 502
    body = str(caught.value.body)
    assert "upstream authentication failed" in body
    assert "sk-proj" not in body and "cdef" not in body and "invalid_api_key" not in body
    # The caller's own key is fine: the next backend may answer.
    gw.flaky.script(Fail(status=403, type="permission_error", message="org-secret has no access"))
    assert oai.chat.completions.create(model="auto", messages=HI).choices[0].message.content == "echo: hi"


def test_error_messages_carry_neither_upstream_urls_nor_upstream_bodies(gw: Rig, oai: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        oai.chat.completions.create(model="dead", messages=HI)
    assert "127.0.0.1" not in str(caught.value.body) and "internal" not in str(caught.value.body)
    for fail in (
        Garbage(status=500, body=b"<html>proxy at 10.1.2.3 says: db password hunter2</html>"),
        Fail(status=500, type="server_error", message="db password hunter2 at 10.1.2.3"),
        Garbage(status=200, body=b"<html>hunter2</html>"),
    ):
        gw.flaky.script(fail)
        with pytest.raises(openai.InternalServerError) as failed:
            oai.chat.completions.create(model="alone", messages=HI)
        assert "hunter2" not in str(failed.value.body) and "10.1.2.3" not in str(failed.value.body)
    # What is the caller's to fix keeps the upstream's explanation and the parameter.
    gw.flaky.script(Fail(status=400, type="invalid_request_error", message="bad top_p", param="top_p"))
    with pytest.raises(openai.BadRequestError) as refused:
        oai.chat.completions.create(model="alone", messages=HI)
    assert isinstance(refused.value.body, dict)
    assert "bad top_p" in refused.value.body["message"] and refused.value.body["param"] == "top_p"


@pytest.mark.parametrize("status", [429, 503])
def test_the_upstreams_retry_after_is_passed_on(gw: Rig, oai: openai.OpenAI, status: int) -> None:
    body = b'{"error": {"message": "slow down", "type": "rate_limit_error"}}'
    gw.raw.response = http_response(status, body, {"retry-after": "7", "content-type": "application/json"})
    with pytest.raises(openai.APIStatusError) as caught:
        oai.chat.completions.create(model="rawalone", messages=HI)
    assert caught.value.status_code == status
    assert caught.value.response.headers["retry-after"] == "7"


@pytest.mark.parametrize(("status", "kind"), [(503, "overloaded_error"), (529, "overloaded_error")])
def test_the_anthropic_edge_says_overloaded_error(rig: Rig, gw: Rig, status: int, kind: str) -> None:
    gw.raw.response = http_response(status, b'{"error": {"message": "busy", "type": "server_error"}}')
    with (
        anthropic.Anthropic(base_url=rig.url, api_key="caller-key", max_retries=0) as client,
        pytest.raises(anthropic.APIStatusError) as caught,
    ):
        client.messages.create(model="rawalone", max_tokens=5, messages=HI)
    assert caught.value.status_code == status
    assert isinstance(caught.value.body, dict) and caught.value.body["error"]["type"] == kind
