"""The OpenAI stand-in, checked with the official ``openai`` SDK as its client.

The server under test is the stand-in (not OpenAI); the SDK is real. If the SDK parses what the
stand-in sends and raises its documented exception classes, the stand-in speaks the wire format
well enough for the backend tests that rely on it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.standins.openai_upstream import (
    Fail,
    FailMidStream,
    OpenAIStandIn,
    Reply,
    ToolCall,
    run_openai_standin,
)

KEY = "sk-standin-test"
USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "tell me a joke"}]


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIStandIn]:
    with run_openai_standin(api_key=KEY, models=["gpt-4o-mini", "gpt-4.1"]) as standin:
        yield standin


@pytest.fixture
def standin(server: OpenAIStandIn) -> OpenAIStandIn:
    server.reset()
    return server


@pytest.fixture
def client(standin: OpenAIStandIn) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=standin.base_url, api_key=KEY, max_retries=0) as sdk:
        yield sdk


def test_create_echoes_the_last_user_message(client: openai.OpenAI, standin: OpenAIStandIn) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=USER)
    reply = raw.parse()
    assert raw.headers["x-request-id"].startswith("req_")
    assert reply.object == "chat.completion"
    assert reply.id.startswith("chatcmpl-")
    assert reply.model == "gpt-4o-mini"
    assert reply.system_fingerprint
    assert reply.choices[0].message.content == "echo: tell me a joke"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (4, 5)
    assert standin.last_request.body["messages"] == USER
    assert standin.last_request.headers["authorization"] == f"Bearer {KEY}"


def test_create_with_tool_calls(client: openai.OpenAI, standin: OpenAIStandIn) -> None:
    standin.script(
        Reply(tool_calls=[ToolCall(name="get_weather", arguments='{"city": "Paris"}', id="call_1")])
    )
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.id == "call_1"
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]


def test_stream_with_usage(client: openai.OpenAI, standin: OpenAIStandIn) -> None:
    standin.script(Reply(content="alpha beta gamma"))
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=USER,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "alpha beta gamma"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3
    assert all(c.usage is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1


def test_stream_without_usage_has_no_usage_chunk(client: openai.OpenAI, standin: OpenAIStandIn) -> None:
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
    chunks = list(stream)
    assert all(c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_stream_tool_call_deltas_assemble(client: openai.OpenAI, standin: OpenAIStandIn) -> None:
    arguments = '{"city": "Paris", "unit": "celsius"}'
    standin.script(Reply(tool_calls=[ToolCall(name="get_weather", arguments=arguments, id="call_7")]))
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
    calls = [call for chunk in stream for call in (chunk.choices[0].delta.tool_calls or [])]
    assert calls[0].index == 0
    assert calls[0].id == "call_7"
    assert calls[0].function is not None
    assert calls[0].function.name == "get_weather"
    assert len(calls) > 2  # the arguments arrive in several fragments
    assert "".join(c.function.arguments or "" for c in calls if c.function) == arguments


@pytest.mark.parametrize(
    ("status", "kind", "exception"),
    [
        (400, "invalid_request_error", openai.BadRequestError),
        (403, "permission_error", openai.PermissionDeniedError),
        (404, "invalid_request_error", openai.NotFoundError),
        (409, "conflict", openai.ConflictError),
        (422, "invalid_request_error", openai.UnprocessableEntityError),
        (429, "requests", openai.RateLimitError),
        (500, "server_error", openai.InternalServerError),
        (503, "server_error", openai.InternalServerError),
    ],
)
def test_error_status_raises_the_sdk_class(
    client: openai.OpenAI,
    standin: OpenAIStandIn,
    status: int,
    kind: str,
    exception: type[openai.APIStatusError],
) -> None:
    standin.script(Fail(status=status, type=kind, message="scripted", code="some_code", param="messages"))
    with pytest.raises(exception) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert caught.value.status_code == status
    assert caught.value.type == kind
    assert caught.value.code == "some_code"
    assert caught.value.param == "messages"
    assert caught.value.request_id is not None
    assert caught.value.request_id.startswith("req_")


def test_error_status_on_a_stream_request(client: openai.OpenAI, standin: OpenAIStandIn) -> None:
    standin.script(Fail(status=429, type="requests", code="rate_limit_exceeded"))
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)


def test_wrong_key_is_an_authentication_error(standin: OpenAIStandIn) -> None:
    with (
        openai.OpenAI(base_url=standin.base_url, api_key="sk-wrong", max_retries=0) as sdk,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        sdk.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert caught.value.code == "invalid_api_key"


def test_in_band_stream_error_raises_api_error(client: openai.OpenAI, standin: OpenAIStandIn) -> None:
    standin.script(FailMidStream(after_chunks=2, message="overloaded mid-way"))
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
    with pytest.raises(openai.APIError, match="overloaded mid-way"):
        list(stream)


def test_models_list(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["gpt-4o-mini", "gpt-4.1"]


def test_script_is_consumed_in_order_then_echo_resumes(client: openai.OpenAI, standin: OpenAIStandIn) -> None:
    standin.script(Reply(content="first"), Reply(content="second"))
    contents = [
        client.chat.completions.create(model="m", messages=USER).choices[0].message.content for _ in range(3)
    ]
    assert contents == ["first", "second", "echo: tell me a joke"]
    assert len(standin.requests) == 3
