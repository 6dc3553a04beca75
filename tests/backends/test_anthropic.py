"""AnthropicBackend against a stand-in Anthropic upstream on loopback.

The upstream is ``tests/standins/anthropic_upstream.py``: a stand-in speaking the documented
Messages API wire format (and refusing what the real API refuses), not Anthropic. aiohttp, the SSE
parsing and the error mapping all run for real.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from hybridgate.backends.anthropic import AnthropicBackend
from hybridgate.config import AnthropicBackend as AnthropicConfig
from hybridgate.errors import (
    UpstreamAuthError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from hybridgate.types import ChatRequest, Json
from tests.standins.anthropic_upstream import (
    AnthropicStandIn,
    Drop,
    Fail,
    FailMidStream,
    Garbage,
    Reply,
    ToolUse,
    Truncate,
    run_anthropic_standin,
)

KEY = "sk-ant-standin"
MODEL = "claude-standin-1"
WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture(scope="module")
def server() -> Iterator[AnthropicStandIn]:
    with run_anthropic_standin(api_key=KEY) as standin:
        yield standin


@pytest.fixture
def upstream(server: AnthropicStandIn) -> Iterator[AnthropicStandIn]:
    yield server
    assert not server.drain(), "a scripted behaviour was never consumed"


def make_backend(base_url: str, *, api_key: str | None = KEY, timeout_s: float = 5.0) -> AnthropicBackend:
    config = AnthropicConfig(
        type="anthropic", base_url=base_url, model=MODEL, default_max_tokens=50, timeout_s=timeout_s
    )
    return AnthropicBackend("frontier", config, api_key)


@pytest.fixture
async def backend(upstream: AnthropicStandIn) -> AsyncIterator[AnthropicBackend]:
    backend = make_backend(upstream.base_url)
    await backend.start()
    yield backend
    await backend.aclose()


def ask(text: str = "hello there", **fields: object) -> ChatRequest:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]
    return ChatRequest.model_validate({"model": "auto", "messages": messages, **fields})


async def collect(backend: AnthropicBackend, request: ChatRequest) -> list[Json]:
    return [chunk async for chunk in backend.stream(request, "claude-override")]


async def test_complete_sends_the_messages_api_and_reads_the_reply(
    backend: AnthropicBackend, upstream: AnthropicStandIn
) -> None:
    response = await backend.complete(ask("what is up"), "claude-override")
    sent = upstream.last_request
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["content-type"] == "application/json"
    assert sent.body["model"] == "claude-override" and sent.body["max_tokens"] == 50
    assert sent.body["system"] == "Be brief."
    choice = response.body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "echo: what is up"}
    assert choice["finish_reason"] == "stop"
    assert response.body["id"].startswith("msg_") and response.model == "claude-override"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (5, 4)


async def test_complete_reads_tool_use_and_counts_cache_tokens(
    backend: AnthropicBackend, upstream: AnthropicStandIn
) -> None:
    tool = ToolUse(name="weather", input={"city": "Oslo"})
    upstream.script(Reply(text="Checking.", tool_uses=[tool], cache_read_input_tokens=100))
    response = await backend.complete(ask(tools=[WEATHER], tool_choice="required"), MODEL)
    assert upstream.last_request.body["tool_choice"] == {"type": "any"}
    message = response.body["choices"][0]["message"]
    assert message["content"] == "Checking."
    assert message["tool_calls"] == [
        {"id": tool.id, "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}
    ]
    assert response.body["choices"][0]["finish_reason"] == "tool_calls"
    assert response.usage.prompt_tokens == 104  # 4 prompt words + 100 read from the cache


async def test_tool_results_are_sent_as_the_api_pairs_them(
    backend: AnthropicBackend, upstream: AnthropicStandIn
) -> None:
    call = {
        "id": "toolu_1",
        "type": "function",
        "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
    }
    messages = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "-3C"},
    ]
    request = ChatRequest.model_validate({"model": "auto", "messages": messages, "tools": [WEATHER]})
    response = await backend.complete(request, MODEL)  # the stand-in refuses orphaned tool results
    assert response.body["choices"][0]["message"]["content"] == "echo: -3C"


@pytest.mark.parametrize(
    ("fields", "finish", "text"),
    [({"stop": ["three"]}, "stop", "echo: one two "), ({"max_tokens": 2}, "length", "echo: one")],
)
async def test_stop_sequences_and_max_tokens_reach_the_upstream(
    backend: AnthropicBackend, fields: Json, finish: str, text: str
) -> None:
    response = await backend.complete(ask("one two three four", **fields), MODEL)
    assert response.body["choices"][0]["finish_reason"] == finish
    assert response.body["choices"][0]["message"]["content"] == text


async def test_stream_text(backend: AnthropicBackend, upstream: AnthropicStandIn) -> None:
    chunks = await collect(backend, ask("stream me please"))
    assert upstream.last_request.body["stream"] is True
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "echo: stream me please"
    assert len([c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]) == 4
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 4


async def test_stream_tool_use_reassembles_arguments(
    backend: AnthropicBackend, upstream: AnthropicStandIn
) -> None:
    tools = [
        ToolUse(name="weather", input={"city": "Oslo", "days": [1, 2, 3]}),
        ToolUse(name="time", input={}),
    ]
    upstream.script(Reply(thinking="let me think", text="Checking.", tool_uses=tools))
    chunks = await collect(backend, ask(tools=[WEATHER]))
    arguments: dict[int, str] = {}
    names: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            for fragment in choice["delta"].get("tool_calls") or []:
                names[fragment["index"]] = names.get(fragment["index"], "") + (
                    fragment["function"].get("name") or ""
                )
                arguments[fragment["index"]] = (
                    arguments.get(fragment["index"], "") + fragment["function"]["arguments"]
                )
    assert names == {0: "weather", 1: "time"}
    assert arguments == {0: '{"city": "Oslo", "days": [1, 2, 3]}', 1: "{}"}
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"


@pytest.mark.parametrize(
    ("behaviour", "status", "type_", "retryable"),
    [
        (
            Fail(status=529, type="overloaded_error", message="Overloaded, try later"),
            529,
            "overloaded_error",
            True,
        ),
        (Fail(status=429, type="rate_limit_error", message="slow down"), 429, "rate_limit_error", True),
        (Fail(status=400, type="invalid_request_error", message="bad"), 400, "invalid_request_error", False),
        (Garbage(status=502, body=b"<html>bad gateway</html>"), 502, "upstream_error", True),
    ],
)
@pytest.mark.parametrize("streaming", [False, True])
async def test_error_statuses_are_mapped(
    backend: AnthropicBackend,
    upstream: AnthropicStandIn,
    behaviour: Fail | Garbage,
    status: int,
    type_: str,
    retryable: bool,
    streaming: bool,
) -> None:
    upstream.script(behaviour)
    with pytest.raises(UpstreamStatusError) as caught:
        await (collect(backend, ask()) if streaming else backend.complete(ask(), MODEL))
    assert (caught.value.status_code, caught.value.type, caught.value.retryable) == (status, type_, retryable)
    if isinstance(behaviour, Fail) and status == 400:  # the caller's to fix: the upstream's words pass
        assert behaviour.message in caught.value.message and "request-id req_" in caught.value.message
    elif isinstance(behaviour, Fail):  # the upstream's trouble: its words go to the log
        assert behaviour.message not in caught.value.message


async def test_a_missing_key_is_an_upstream_auth_failure_not_the_callers(upstream: AnthropicStandIn) -> None:
    backend = make_backend(upstream.base_url, api_key=None)  # no start(): the client is made lazily
    try:
        with pytest.raises(UpstreamAuthError) as caught:
            await backend.complete(ask(), MODEL)
    finally:
        await backend.aclose()
    # The gateway's own key failed, not the caller's: a 502 the next backend may recover from.
    assert (caught.value.status_code, caught.value.type, caught.value.retryable) == (
        502,
        "upstream_error",
        True,
    )
    assert "x-api-key" not in upstream.last_request.headers


@pytest.mark.parametrize(
    "behaviour",
    [
        Garbage(),
        Garbage(body=b'{"hello": "world"}', content_type="application/json"),
        Garbage(
            body=b'{"type": "message", "content": [], "usage": {"input_tokens": "many", "output_tokens": 1}}',
            content_type="application/json",
        ),
        Garbage(body=b'{"type": "message", "content": "hi", "usage": {}}', content_type="application/json"),
        Truncate(after_events=0),
        Drop(after_events=0),
    ],
)
async def test_garbage_and_cut_bodies_are_protocol_errors(
    backend: AnthropicBackend, upstream: AnthropicStandIn, behaviour: Garbage | Truncate | Drop
) -> None:
    upstream.script(behaviour)
    with pytest.raises(UpstreamProtocolError):
        await backend.complete(ask(), MODEL)


@pytest.mark.parametrize(
    "behaviour",
    [
        Garbage(),
        Garbage(body=b"event: message_start\ndata: {not json\n\n", content_type="text/event-stream"),
        Garbage(body=b'event: content_block_delta\ndata: {"type": "content_block_delta"}\n\n'),
        Truncate(after_events=6),
        Drop(after_events=6),
    ],
)
async def test_stream_garbage_and_drops_are_protocol_errors(
    backend: AnthropicBackend, upstream: AnthropicStandIn, behaviour: Garbage | Truncate | Drop
) -> None:
    upstream.script(behaviour)
    with pytest.raises(UpstreamProtocolError) as caught:
        await collect(backend, ask())
    if isinstance(behaviour, Drop):
        assert isinstance(caught.value.__cause__, aiohttp.ClientPayloadError)


async def test_stream_error_event_mid_stream(backend: AnthropicBackend, upstream: AnthropicStandIn) -> None:
    upstream.script(FailMidStream(after_events=5))
    received: list[Json] = []
    with pytest.raises(UpstreamStatusError) as caught:
        async for chunk in backend.stream(ask(), MODEL):
            received.append(chunk)
    assert (caught.value.status_code, caught.value.type) == (529, "overloaded_error")
    assert received  # the chunks before the error were already passed on


async def test_timeout(upstream: AnthropicStandIn) -> None:
    backend = make_backend(upstream.base_url, timeout_s=0.2)
    upstream.script(Reply(delay_s=1.0))
    try:
        with pytest.raises(UpstreamTimeoutError) as caught:
            await backend.complete(ask(), MODEL)
    finally:
        await backend.aclose()
    assert isinstance(caught.value.__cause__, TimeoutError)


async def test_unreachable_upstream() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = make_backend(f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(UpstreamUnavailableError) as caught:
            await collect(backend, ask())
    finally:
        await backend.aclose()
    assert isinstance(caught.value.__cause__, aiohttp.ClientConnectorError)
