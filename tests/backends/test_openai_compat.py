"""OpenAICompatBackend against a stand-in OpenAI upstream on loopback.

The upstream here is ``tests/standins/openai_upstream.py`` (a stand-in speaking the OpenAI
chat-completions wire format, not OpenAI); a bare asyncio socket server stands in for an upstream
that hangs up before answering. aiohttp, SSE parsing and the error mapping all run for real.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from hybridgate.backends.base import Backend
from hybridgate.backends.openai_compat import OpenAICompatBackend
from hybridgate.config import OpenAICompatBackend as OpenAICompatConfig
from hybridgate.errors import (
    UpstreamAuthError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from hybridgate.types import ChatRequest, Json, Usage
from tests.standins.openai_upstream import (
    Drop,
    Fail,
    FailMidStream,
    Garbage,
    OpenAIStandIn,
    Reply,
    ToolCall,
    Truncate,
    run_openai_standin,
)

KEY = "sk-standin-backend"
UPSTREAM_MODEL = "gpt-4o-mini-2024-07-18"


def ask(text: str = "hello there", **extra: object) -> ChatRequest:
    return ChatRequest.model_validate(
        {"model": "auto", "messages": [{"role": "user", "content": text}], **extra}
    )


def backend_for(base_url: str, api_key: str | None = KEY, timeout_s: float = 5.0) -> OpenAICompatBackend:
    config = OpenAICompatConfig(
        type="openai_compat", base_url=base_url, model="gpt-4o-mini", timeout_s=timeout_s
    )
    return OpenAICompatBackend("cloud", config, api_key)


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIStandIn]:
    with run_openai_standin(api_key=KEY) as standin:
        yield standin


@pytest.fixture
def standin(server: OpenAIStandIn) -> OpenAIStandIn:
    server.reset()
    return server


@pytest.fixture
async def backend(standin: OpenAIStandIn) -> AsyncIterator[OpenAICompatBackend]:
    backend = backend_for(standin.base_url)
    await backend.start()
    yield backend
    await backend.aclose()


async def collect(
    backend: OpenAICompatBackend, request: ChatRequest, into: list[Json] | None = None
) -> list[Json]:
    chunks = [] if into is None else into
    async for chunk in backend.stream(request, UPSTREAM_MODEL):
        chunks.append(chunk)
    return chunks


async def test_complete_returns_the_upstream_body(
    backend: OpenAICompatBackend, standin: OpenAIStandIn
) -> None:
    response = await backend.complete(ask("hello there"), UPSTREAM_MODEL)
    assert response.body["object"] == "chat.completion"
    assert response.body["choices"][0]["message"]["content"] == "echo: hello there"
    assert response.usage == Usage(prompt_tokens=2, completion_tokens=3)
    assert response.model == UPSTREAM_MODEL
    assert response.system_fingerprint == "fp_standin01"


async def test_complete_sends_the_concrete_model_and_the_bearer_key(
    backend: OpenAICompatBackend, standin: OpenAIStandIn
) -> None:
    await backend.complete(ask(temperature=0.5, stream_options={"include_usage": True}), UPSTREAM_MODEL)
    sent = standin.last_request
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.body["model"] == UPSTREAM_MODEL
    assert sent.body["stream"] is False
    assert sent.body["temperature"] == 0.5
    # OpenAI rejects stream_options without stream; the stand-in would have answered 400.
    assert "stream_options" not in sent.body


async def test_no_api_key_sends_no_authorization(standin: OpenAIStandIn) -> None:
    backend = backend_for(standin.base_url, api_key=None)
    try:
        with pytest.raises(UpstreamAuthError) as caught:
            await backend.complete(ask(), UPSTREAM_MODEL)
    finally:
        await backend.aclose()
    assert "authorization" not in standin.last_request.headers
    # The upstream refused the gateway's key, not the caller's: a 502, without the provider's words.
    assert (caught.value.status_code, caught.value.type, caught.value.retryable) == (
        502,
        "upstream_error",
        True,
    )
    assert "Incorrect API key" not in caught.value.message


async def test_connections_are_pooled(backend: OpenAICompatBackend, standin: OpenAIStandIn) -> None:
    await backend.complete(ask("one"), UPSTREAM_MODEL)
    await collect(backend, ask("two"))
    await backend.complete(ask("three"), UPSTREAM_MODEL)
    assert len({r.peer for r in standin.requests}) == 1


async def test_complete_passes_tool_calls_through(
    backend: OpenAICompatBackend, standin: OpenAIStandIn
) -> None:
    standin.script(Reply(tool_calls=[ToolCall(name="lookup", arguments='{"q": "x"}', id="call_9")]))
    response = await backend.complete(ask(), UPSTREAM_MODEL)
    message = response.body["choices"][0]["message"]
    assert message["tool_calls"] == [
        {"id": "call_9", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}
    ]
    assert response.body["choices"][0]["finish_reason"] == "tool_calls"


async def test_stream_yields_every_chunk_and_the_usage_chunk(
    backend: OpenAICompatBackend, standin: OpenAIStandIn
) -> None:
    standin.script(Reply(content="alpha beta gamma"))
    chunks = await collect(backend, ask())
    assert [c["object"] for c in chunks] == ["chat.completion.chunk"] * 6
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [c["choices"][0]["delta"].get("content") for c in chunks[1:4]] == ["alpha", " beta", " gamma"]
    assert chunks[4]["choices"][0]["finish_reason"] == "stop"
    assert chunks[5]["choices"] == []
    assert Usage.from_openai(chunks[5]["usage"]) == Usage(prompt_tokens=2, completion_tokens=3)
    assert all(c["model"] == UPSTREAM_MODEL for c in chunks)


async def test_stream_always_asks_for_usage(backend: OpenAICompatBackend, standin: OpenAIStandIn) -> None:
    await collect(backend, ask(stream_options={"include_obfuscation": False}))
    sent = standin.last_request.body
    assert sent["stream"] is True
    assert sent["model"] == UPSTREAM_MODEL
    assert sent["stream_options"] == {"include_obfuscation": False, "include_usage": True}


async def test_stream_passes_tool_call_deltas_through(
    backend: OpenAICompatBackend, standin: OpenAIStandIn
) -> None:
    arguments = '{"city": "Paris", "days": 3}'
    standin.script(Reply(tool_calls=[ToolCall(name="forecast", arguments=arguments, id="call_3")]))
    chunks = await collect(backend, ask())
    calls = [call for c in chunks if c["choices"] for call in c["choices"][0]["delta"].get("tool_calls", [])]
    assert calls[0] == {
        "index": 0,
        "id": "call_3",
        "type": "function",
        "function": {"name": "forecast", "arguments": ""},
    }
    fragments = [call["function"]["arguments"] for call in calls[1:]]
    assert len(fragments) > 1
    assert "".join(fragments) == arguments
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


async def test_stream_yields_chunks_before_a_drop(
    backend: OpenAICompatBackend, standin: OpenAIStandIn
) -> None:
    standin.script(Drop(after_chunks=3))
    received: list[Json] = []
    with pytest.raises(UpstreamProtocolError) as caught:
        await collect(backend, ask(), into=received)
    # The three chunks reached the caller before the failure: nothing was buffered.
    assert len(received) == 3
    assert isinstance(caught.value.__cause__, aiohttp.ClientPayloadError)


async def test_stream_without_done_is_a_protocol_error(
    backend: OpenAICompatBackend, standin: OpenAIStandIn
) -> None:
    standin.script(Truncate(after_chunks=2))
    received: list[Json] = []
    with pytest.raises(UpstreamProtocolError, match=r"without 'data: \[DONE\]'"):
        await collect(backend, ask(), into=received)
    assert len(received) == 2


async def test_stream_in_band_error_is_a_status_error(
    backend: OpenAICompatBackend, standin: OpenAIStandIn
) -> None:
    standin.script(FailMidStream(after_chunks=1, type="server_error", message="overloaded"))
    with pytest.raises(UpstreamStatusError) as caught:
        await collect(backend, ask())
    assert (caught.value.status_code, caught.value.type, caught.value.message) == (
        502,
        "server_error",
        "backend 'cloud' failed upstream: HTTP 502 Bad Gateway",
    )


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b"<html>proxy</html>", "text/html"), (b"data: {not json\n\n", "text/event-stream")],
)
async def test_stream_garbage_is_a_protocol_error(
    backend: OpenAICompatBackend, standin: OpenAIStandIn, body: bytes, content_type: str
) -> None:
    standin.script(Garbage(body=body, content_type=content_type))
    with pytest.raises(UpstreamProtocolError):
        await collect(backend, ask())


@pytest.mark.parametrize("streaming", [False, True])
@pytest.mark.parametrize(
    ("fail", "retryable"),
    [
        (Fail(status=429, type="requests", message="Rate limit reached", code="rate_limit_exceeded"), True),
        (
            Fail(status=400, type="invalid_request_error", message="bad temperature", param="temperature"),
            False,
        ),
        (Fail(status=500, type="server_error", message="The server had an error"), True),
    ],
)
async def test_http_errors_keep_status_type_message_and_param(
    backend: OpenAICompatBackend, standin: OpenAIStandIn, fail: Fail, retryable: bool, streaming: bool
) -> None:
    standin.script(fail)
    with pytest.raises(UpstreamStatusError) as caught:
        await (collect(backend, ask()) if streaming else backend.complete(ask(), UPSTREAM_MODEL))
    error = caught.value
    assert (error.status_code, error.type, error.retryable) == (fail.status, fail.type, retryable)
    if fail.status == 400:  # the caller's to fix: the upstream's explanation and parameter pass
        assert (error.message, error.param) == (
            f"backend 'cloud' refused the request: {fail.message}",
            fail.param,
        )
    else:  # the upstream's trouble: its words go to the log
        assert fail.message not in error.message and error.param is None


@pytest.mark.parametrize("streaming", [False, True])
async def test_http_error_with_a_non_json_body(
    backend: OpenAICompatBackend, standin: OpenAIStandIn, streaming: bool
) -> None:
    standin.script(Garbage(body=b"<html>502 Bad Gateway</html>", status=502))
    with pytest.raises(UpstreamStatusError) as caught:
        await (collect(backend, ask()) if streaming else backend.complete(ask(), UPSTREAM_MODEL))
    assert (caught.value.status_code, caught.value.type) == (502, "upstream_error")
    assert "<html>" not in caught.value.message


async def test_http_error_in_another_shape_keeps_its_text(
    backend: OpenAICompatBackend, standin: OpenAIStandIn
) -> None:
    standin.script(Garbage(body=b'{"detail": "Not Found"}', status=404, content_type="application/json"))
    with pytest.raises(UpstreamStatusError) as caught:
        await backend.complete(ask(), UPSTREAM_MODEL)
    assert (caught.value.status_code, caught.value.type) == (404, "upstream_error")
    assert "Not Found" in caught.value.message
    assert caught.value.retryable is False


@pytest.mark.parametrize(
    "garbage",
    [
        Garbage(body=b"<html>hello</html>"),
        Garbage(body=b'{"object": "list", "data": []}', content_type="application/json"),
        Garbage(body=b"[1, 2]", content_type="application/json"),
    ],
)
async def test_complete_off_format_body_is_a_protocol_error(
    backend: OpenAICompatBackend, standin: OpenAIStandIn, garbage: Garbage
) -> None:
    standin.script(garbage)
    with pytest.raises(UpstreamProtocolError):
        await backend.complete(ask(), UPSTREAM_MODEL)


async def test_complete_body_cut_off_is_a_protocol_error(
    backend: OpenAICompatBackend, standin: OpenAIStandIn
) -> None:
    standin.script(Drop(after_chunks=0))
    with pytest.raises(UpstreamProtocolError) as caught:
        await backend.complete(ask(), UPSTREAM_MODEL)
    assert isinstance(caught.value.__cause__, aiohttp.ClientPayloadError)


@pytest.mark.parametrize("streaming", [False, True])
async def test_slow_upstream_is_a_timeout(standin: OpenAIStandIn, streaming: bool) -> None:
    standin.script(Reply(delay_s=1.0))
    backend = backend_for(standin.base_url, timeout_s=0.2)
    try:
        with pytest.raises(UpstreamTimeoutError) as caught:
            await (collect(backend, ask()) if streaming else backend.complete(ask(), UPSTREAM_MODEL))
    finally:
        await backend.aclose()
    assert isinstance(caught.value.__cause__, TimeoutError)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.parametrize("streaming", [False, True])
async def test_nothing_listening_is_unavailable(streaming: bool) -> None:
    backend = backend_for(f"http://127.0.0.1:{free_port()}/v1")
    try:
        with pytest.raises(UpstreamUnavailableError) as caught:
            await (collect(backend, ask()) if streaming else backend.complete(ask(), UPSTREAM_MODEL))
    finally:
        await backend.aclose()
    assert isinstance(caught.value.__cause__, aiohttp.ClientConnectorError)


async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1024)
    writer.close()
    await writer.wait_closed()


@pytest.mark.parametrize("streaming", [False, True])
async def test_hang_up_before_answering_is_unavailable(streaming: bool) -> None:
    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    backend = backend_for(f"http://127.0.0.1:{port}/v1")
    try:
        with pytest.raises(UpstreamUnavailableError) as caught:
            await (collect(backend, ask()) if streaming else backend.complete(ask(), UPSTREAM_MODEL))
    finally:
        await backend.aclose()
        server.close()
        await server.wait_closed()
    assert isinstance(caught.value.__cause__, aiohttp.ServerDisconnectedError)


async def test_backend_identity_comes_from_config() -> None:
    config = OpenAICompatConfig(type="openai_compat", model="gpt-4.1", local=True)
    backend: Backend = OpenAICompatBackend("vllm", config, None)  # mypy checks the Protocol here
    assert (backend.name, backend.model, backend.local) == ("vllm", "gpt-4.1", True)
    await backend.aclose()  # closing a never-started backend is a no-op
