"""Response translation tests for wire/anthropic_responses.py: message <-> chat.completion, stop reasons,
usage and error bodies, over plain data. The Anthropic shapes follow the documented Messages API.
"""

from __future__ import annotations

from typing import Any

import pytest

from hybridgate.errors import UpstreamProtocolError
from hybridgate.types import Json
from hybridgate.wire.anthropic_responses import (
    completion_from_message,
    error_body,
    finish_reason,
    message_from_completion,
    stop_reason,
)

ANTHROPIC_MESSAGE: Json = {
    "id": "msg_01abc",
    "type": "message",
    "role": "assistant",
    "model": "claude-x-20250101",
    "content": [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 10,
        "cache_creation_input_tokens": 3,
        "cache_read_input_tokens": 5,
        "output_tokens": 7,
    },
}


def test_message_becomes_chat_completion() -> None:
    completion = completion_from_message(ANTHROPIC_MESSAGE, created=123)
    assert (completion["id"], completion["object"], completion["created"]) == (
        "msg_01abc",
        "chat.completion",
        123,
    )
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Checking."  # the thinking block has no OpenAI slot
    call = choice["message"]["tool_calls"][0]
    assert (call["id"], call["function"]["name"]) == ("toolu_1", "weather")
    assert call["function"]["arguments"] == '{"city": "Oslo"}'
    assert completion["usage"] == {
        "prompt_tokens": 18,  # cache writes and reads are input tokens too
        "completion_tokens": 7,
        "total_tokens": 25,
        "prompt_tokens_details": {"cached_tokens": 5},
    }


def test_completion_becomes_message_and_back() -> None:
    message = message_from_completion(completion_from_message(ANTHROPIC_MESSAGE))
    assert message["id"] == "msg_01abc"
    assert message["content"] == ANTHROPIC_MESSAGE["content"]  # signed thinking blocks included
    assert (message["stop_reason"], message["stop_sequence"]) == ("tool_use", None)
    # cache writes fold into input on the OpenAI side; cache reads survive the round trip
    assert message["usage"] == {
        "input_tokens": 13,
        "output_tokens": 7,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 5,
    }


def test_completion_from_local_model_with_broken_arguments_still_makes_a_message() -> None:
    call = {"id": "call_9", "type": "function", "function": {"name": "weather", "arguments": "{city: Oslo"}}
    completion = {
        "id": "chatcmpl-9",
        "model": "smollm2",
        "choices": [
            {"message": {"role": "assistant", "content": None, "tool_calls": [call]}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 4, "completion_tokens": 2},
    }
    message = message_from_completion(completion, model="claude-alias")
    assert (message["id"], message["model"]) == ("msg_9", "claude-alias")
    assert message["content"] == [
        {"type": "tool_use", "id": "call_9", "name": "weather", "input": {"arguments": "{city: Oslo"}}
    ]
    assert message["stop_reason"] == "tool_use"  # "stop" after tool calls would leave tools unrun


@pytest.mark.parametrize(
    ("anthropic", "openai"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("some_future_reason", "stop"),
        (None, None),
    ],
)
def test_stop_reasons(anthropic: str | None, openai: str | None) -> None:
    assert finish_reason(anthropic) == openai


@pytest.mark.parametrize(
    ("openai", "anthropic"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
    ],
)
def test_finish_reasons(openai: str | None, anthropic: str) -> None:
    assert stop_reason(openai) == anthropic


@pytest.mark.parametrize(
    "garbage",
    [
        "not a message",
        {"type": "error", "error": {"type": "api_error", "message": "x"}},
        {**ANTHROPIC_MESSAGE, "content": "text"},
        {**ANTHROPIC_MESSAGE, "usage": None},
        {**ANTHROPIC_MESSAGE, "content": [{"type": "tool_use", "input": {}}]},
    ],
)
def test_upstream_garbage_is_a_protocol_error(garbage: Any) -> None:
    with pytest.raises(UpstreamProtocolError):
        completion_from_message(garbage)


def test_error_body_uses_documented_types() -> None:
    assert error_body(529, "busy") == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "busy"},
    }
    assert error_body(502, "x")["error"]["type"] == "api_error"
    assert error_body(422, "x")["error"]["type"] == "invalid_request_error"
