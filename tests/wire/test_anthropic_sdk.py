"""What wire/anthropic_responses.py and anthropic_stream.py produce for the ``/v1/messages``
ingress, parsed by the official SDK.

The translator's output (a ``message`` body, an SSE event sequence) is served verbatim by the
Anthropic stand-in (``tests/standins/anthropic_upstream.py``, not Anthropic) through its
``Replay`` behaviour, and read back with the real ``anthropic`` client: if the SDK assembles the
same content, the ingress speaks the format its callers' SDKs expect.
"""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import pytest

from hybridgate.types import Json
from hybridgate.wire.anthropic_responses import message_from_completion
from hybridgate.wire.anthropic_stream import AnthropicStreamWriter
from tests.standins.anthropic_upstream import AnthropicStandIn, Replay, run_anthropic_standin

ASK: list[anthropic.types.MessageParam] = [{"role": "user", "content": "weather in Oslo and Rome?"}]


@pytest.fixture(scope="module")
def client() -> Iterator[tuple[anthropic.Anthropic, AnthropicStandIn]]:
    with (
        run_anthropic_standin() as standin,
        anthropic.Anthropic(base_url=standin.base_url, api_key="k", max_retries=0) as sdk,
    ):
        yield sdk, standin


def chunk(delta: Json, finish: str | None = None) -> Json:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "smollm2", "choices": [choice]}


def tool_chunks() -> list[Json]:
    head = {"type": "function", "function": {"name": "weather", "arguments": ""}}
    return [
        chunk({"role": "assistant", "content": "Checking both."}),
        chunk({"tool_calls": [{"index": 0, "id": "call_a", **head}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_b", **head}]}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": '{"city": "Rome"}'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Oslo"}'}}]}),
        chunk({}, "tool_calls"),
        {**chunk({}), "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 5}},
    ]


def test_streamed_events_assemble_into_the_sdks_final_message(
    client: tuple[anthropic.Anthropic, AnthropicStandIn],
) -> None:
    sdk, standin = client
    writer = AnthropicStreamWriter(model="claude-alias", input_tokens=7)
    events = [event for c in tool_chunks() for event in writer.feed(c)] + writer.finish()
    standin.script(Replay(events=events))
    with sdk.messages.stream(model="claude-alias", max_tokens=50, messages=ASK) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Checking both."
    assert (final.id, final.model, final.stop_reason) == ("msg_1", "claude-alias", "tool_use")
    tools = [(b.id, b.input) for b in final.content if b.type == "tool_use"]
    assert tools == [("call_a", {"city": "Oslo"}), ("call_b", {"city": "Rome"})]
    assert (final.usage.input_tokens, final.usage.output_tokens) == (9, 5)  # message_delta corrects 7


def test_message_body_parses_as_the_sdks_message(
    client: tuple[anthropic.Anthropic, AnthropicStandIn],
) -> None:
    sdk, standin = client
    call = {
        "id": "call_a",
        "type": "function",
        "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
    }
    completion = {
        "id": "chatcmpl-2",
        "model": "smollm2",
        "choices": [{"message": {"role": "assistant", "content": "Checking.", "tool_calls": [call]}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 4}},
    }
    standin.script(Replay(body=message_from_completion(completion, model="claude-alias")))
    message = sdk.messages.create(model="claude-alias", max_tokens=50, messages=ASK)
    assert message.content[0].type == "text" and message.content[0].text == "Checking."
    tool = message.content[1]
    assert tool.type == "tool_use" and (tool.name, tool.input) == ("weather", {"city": "Oslo"})
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (5, 4)
