"""The Anthropic stand-in, checked with the official ``anthropic`` SDK as its client.

The server under test is the stand-in (not Anthropic); the SDK is real. If the SDK parses the
messages and SSE streams the stand-in sends, and raises its documented exception classes for the
stand-in's errors, the stand-in speaks the wire format well enough for the backend tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import pytest
from anthropic.types import MessageParam, ToolParam

from tests.standins.anthropic_upstream import (
    AnthropicStandIn,
    Fail,
    FailMidStream,
    Reply,
    ToolUse,
    run_anthropic_standin,
)

KEY = "sk-ant-sdk-check"
TOOL: ToolParam = {
    "name": "weather",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture(scope="module")
def server() -> Iterator[AnthropicStandIn]:
    with run_anthropic_standin(api_key=KEY) as standin:
        yield standin


@pytest.fixture
def upstream(server: AnthropicStandIn) -> Iterator[AnthropicStandIn]:
    yield server
    assert not server.drain(), "a scripted behaviour was never consumed"


@pytest.fixture
def client(server: AnthropicStandIn) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server.base_url, api_key=KEY, max_retries=0) as sdk:
        yield sdk


def test_create_text(client: anthropic.Anthropic, upstream: AnthropicStandIn) -> None:
    message = client.messages.create(
        model="claude-x",
        max_tokens=20,
        system="Be brief.",
        messages=[{"role": "user", "content": "hello you"}],
    )
    assert message.id.startswith("msg_") and message.model == "claude-x"
    assert message.content[0].type == "text" and message.content[0].text == "echo: hello you"
    assert (message.stop_reason, message.usage.input_tokens, message.usage.output_tokens) == (
        "end_turn",
        4,
        3,
    )
    assert message._request_id and message._request_id.startswith("req_")
    assert upstream.last_request.headers["anthropic-version"]  # the SDK pins its own version


def test_create_tool_use(client: anthropic.Anthropic, upstream: AnthropicStandIn) -> None:
    upstream.script(
        Reply(text="Checking.", tool_uses=[ToolUse(name="weather", input={"city": "Oslo"}, id="toolu_x")])
    )
    message = client.messages.create(
        model="claude-x",
        max_tokens=20,
        tools=[TOOL],
        messages=[{"role": "user", "content": "weather?"}],
    )
    assert message.stop_reason == "tool_use"
    block = message.content[1]
    assert block.type == "tool_use" and (block.id, block.name, block.input) == (
        "toolu_x",
        "weather",
        {"city": "Oslo"},
    )


def test_stream_reassembles_to_the_same_message(
    client: anthropic.Anthropic, upstream: AnthropicStandIn
) -> None:
    tool = ToolUse(name="weather", input={"city": "Oslo", "days": [1, 2]}, id="toolu_y")
    upstream.script(Reply(thinking="hmm", text="Let me check the weather.", tool_uses=[tool]))
    with client.messages.stream(
        model="claude-x",
        max_tokens=20,
        tools=[TOOL],
        messages=[{"role": "user", "content": "weather?"}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Let me check the weather."
    assert [b.type for b in final.content] == ["thinking", "text", "tool_use"]
    tool_block = final.content[2]
    assert tool_block.type == "tool_use" and tool_block.input == {"city": "Oslo", "days": [1, 2]}
    assert (final.stop_reason, final.usage.output_tokens) == ("tool_use", 10)


@pytest.mark.parametrize(
    ("status", "type_", "exception"),
    [
        (429, "rate_limit_error", anthropic.RateLimitError),
        (529, "overloaded_error", anthropic.APIStatusError),
        (400, "invalid_request_error", anthropic.BadRequestError),
    ],
)
def test_errors_raise_the_sdks_classes(
    client: anthropic.Anthropic,
    upstream: AnthropicStandIn,
    status: int,
    type_: str,
    exception: type[Exception],
) -> None:
    upstream.script(Fail(status=status, type=type_, message="scripted"))
    with pytest.raises(exception) as caught:
        client.messages.create(model="claude-x", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert isinstance(caught.value, anthropic.APIStatusError) and caught.value.status_code == status
    assert caught.value.body == {
        "type": "error",
        "error": {"type": type_, "message": "scripted"},
        "request_id": caught.value.request_id,
    }


def test_the_stand_in_refuses_what_the_api_refuses(client: anthropic.Anthropic) -> None:
    orphan: list[MessageParam] = [
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_zz", "content": "x"}]}
    ]
    with pytest.raises(anthropic.BadRequestError, match="tool_use_id"):
        client.messages.create(model="claude-x", max_tokens=5, messages=orphan)
    with pytest.raises(anthropic.BadRequestError, match="non-empty"):
        client.messages.create(
            model="claude-x",
            max_tokens=5,
            messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}],
        )
    wrong = anthropic.Anthropic(base_url=client.base_url, api_key="wrong", max_retries=0)
    with wrong, pytest.raises(anthropic.AuthenticationError):
        wrong.messages.create(model="claude-x", max_tokens=5, messages=[{"role": "user", "content": "hi"}])


def test_error_event_mid_stream(client: anthropic.Anthropic, upstream: AnthropicStandIn) -> None:
    upstream.script(FailMidStream(after_events=4))
    with (
        pytest.raises(anthropic.APIStatusError, match="Overloaded"),
        client.messages.stream(
            model="claude-x", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        ) as s,
    ):
        s.get_final_message()
