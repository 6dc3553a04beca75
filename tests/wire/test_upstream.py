"""The upstream wire-format checks (wire/upstream.py) over plain dicts; no I/O."""

from __future__ import annotations

from typing import Any

import pytest

from hybridgate.errors import UpstreamProtocolError
from hybridgate.wire.upstream import check_anthropic_message, check_chunk, check_completion

CHOICE = {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
COMPLETION = {"id": "c", "object": "chat.completion", "model": "m", "choices": [CHOICE]}
MESSAGE = {
    "type": "message",
    "id": "msg_1",
    "model": "claude",
    "content": [{"type": "text", "text": "hi"}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 3, "output_tokens": 1},
}


def test_well_formed_bodies_pass_with_unknown_fields() -> None:
    check_completion({**COMPLETION, "service_tier": "x", "usage": {"prompt_tokens": 2**64 - 1}}, "b")
    check_chunk({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}, "extra": [1]}, "b")
    check_chunk({"choices": [{"index": 0, "delta": {"content": "x"}, "logprobs": None}]}, "b")
    check_anthropic_message({**MESSAGE, "container": None}, "b")


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({**COMPLETION, "choices": [1, 2]}, "choices.0"),
        ({**COMPLETION, "choices": "abc"}, "choices"),
        ({**COMPLETION, "choices": []}, "no choices"),
        ({**COMPLETION, "usage": {"prompt_tokens": "many"}}, "usage.prompt_tokens"),
        ({**COMPLETION, "usage": "lots"}, "usage"),
        ({**COMPLETION, "usage": {"prompt_tokens_details": {"cached_tokens": "all"}}}, "cached_tokens"),
        ({**COMPLETION, "choices": [{**CHOICE, "message": "hi"}]}, "choices.0.message"),
        ({**COMPLETION, "choices": [{**CHOICE, "message": {"content": 5}}]}, "choices.0.message.content"),
        ({**COMPLETION, "choices": [{**CHOICE, "message": {"tool_calls": [7]}}]}, "tool_calls.0"),
        ({**COMPLETION, "model": {"x": 1}}, "model"),
        ([COMPLETION], "body"),
    ],
)
def test_malformed_answers_are_protocol_errors_naming_the_field(body: Any, where: str) -> None:
    with pytest.raises(
        UpstreamProtocolError, match=r"backend 'b' sent (a malformed answer|an answer with no choices)"
    ) as caught:
        check_completion(body, "backend 'b'")
    assert where in caught.value.message
    assert caught.value.status_code == 502 and caught.value.retryable


@pytest.mark.parametrize(
    "chunk",
    [
        {"choices": "abc"},
        {"choices": [{"delta": "abc"}]},
        {"choices": [{"delta": {"content": ["x"]}}]},
        {"choices": [{"delta": {"tool_calls": [{"function": "f"}]}}]},
        {"choices": [], "usage": {"completion_tokens": "7 tokens"}},
        {"choices": [{"index": "first", "delta": {}}]},
    ],
)
def test_malformed_chunks_are_protocol_errors(chunk: Any) -> None:
    with pytest.raises(UpstreamProtocolError, match="malformed stream chunk"):
        check_chunk(chunk, "backend 'b'")


@pytest.mark.parametrize(
    "body",
    [
        {**MESSAGE, "usage": {"input_tokens": "many"}},
        {**MESSAGE, "content": "hi"},
        {**MESSAGE, "type": "completion"},
        {**MESSAGE, "usage": None},
    ],
)
def test_malformed_anthropic_messages_are_protocol_errors(body: Any) -> None:
    with pytest.raises(UpstreamProtocolError, match="malformed message"):
        check_anthropic_message(body, "backend 'b'")
