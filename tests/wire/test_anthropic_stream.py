"""Stream translation tests for wire/anthropic_stream.py, in both directions, over plain data.

The Anthropic event sequences below follow the documented Messages streaming format (ping events,
input_json_delta fragments, message_delta usage); no server is involved.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hybridgate.errors import UpstreamAuthError, UpstreamProtocolError, UpstreamStatusError
from hybridgate.types import Json
from hybridgate.wire.anthropic_stream import AnthropicStreamReader, AnthropicStreamWriter, anthropic_events


def anthropic_stream(tool_json: list[str]) -> list[Json]:
    usage = {"input_tokens": 12, "cache_read_input_tokens": 4, "output_tokens": 1}
    message: Json = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    events: list[Json] = [{"type": "message_start", "message": message}]
    events.append(
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}
    )
    events.append(
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hm"}}
    )
    events.append({"type": "content_block_stop", "index": 0})
    events.append({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}})
    events.append({"type": "ping"})
    for piece in ["Let me", " check."]:
        events.append(
            {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": piece}}
        )
    events.append({"type": "content_block_stop", "index": 1})
    tool = {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {}}
    events.append({"type": "content_block_start", "index": 2, "content_block": tool})
    for piece in tool_json:
        delta = {"type": "input_json_delta", "partial_json": piece}
        events.append({"type": "content_block_delta", "index": 2, "delta": delta})
    events.append({"type": "content_block_stop", "index": 2})
    events.append({"type": "a_future_event", "data": 1})
    stop: Json = {"stop_reason": "tool_use", "stop_sequence": None}
    events.append({"type": "message_delta", "delta": stop, "usage": {"output_tokens": 30}})
    events.append({"type": "message_stop"})
    return events


def accumulate_chunks(chunks: list[Json]) -> Json:
    """What an OpenAI SDK client would assemble: text, tool calls by index, finish, usage."""
    text, finish, usage = "", None, None
    calls: dict[int, Json] = {}
    for chunk in chunks:
        usage = chunk.get("usage") or usage
        for choice in chunk["choices"]:
            text += choice["delta"].get("content") or ""
            for fragment in choice["delta"].get("tool_calls") or []:
                call = calls.setdefault(fragment["index"], {"id": None, "name": "", "arguments": ""})
                call["id"] = fragment.get("id") or call["id"]
                call["name"] += fragment.get("function", {}).get("name") or ""
                call["arguments"] += fragment.get("function", {}).get("arguments") or ""
            finish = choice["finish_reason"] or finish
    return {"text": text, "calls": calls, "finish": finish, "usage": usage}


def accumulate_events(events: list[Json]) -> list[Json]:
    """What an Anthropic SDK client would assemble: content blocks by index, JSON input parsed."""
    blocks: dict[int, Json] = {}
    partial: dict[int, str] = {}
    for event in events:
        if event["type"] == "content_block_start":
            blocks[event["index"]] = dict(event["content_block"])
        elif event["type"] == "content_block_delta" and event["delta"]["type"] == "text_delta":
            blocks[event["index"]]["text"] += event["delta"]["text"]
        elif event["type"] == "content_block_delta" and event["delta"]["type"] == "thinking_delta":
            blocks[event["index"]]["thinking"] += event["delta"]["thinking"]
        elif event["type"] == "content_block_delta" and event["delta"]["type"] == "signature_delta":
            blocks[event["index"]]["signature"] += event["delta"]["signature"]
        elif event["type"] == "content_block_delta":
            partial[event["index"]] = partial.get(event["index"], "") + event["delta"]["partial_json"]
        elif event["type"] == "content_block_stop" and event["index"] in partial:
            blocks[event["index"]]["input"] = json.loads(partial[event["index"]])
    return [blocks[i] for i in sorted(blocks)]


def read_all(events: list[Json]) -> tuple[AnthropicStreamReader, list[Json]]:
    reader = AnthropicStreamReader(created=1)
    return reader, [chunk for event in events for chunk in reader.feed(event)]


def test_reader_reassembles_text_and_tool_arguments() -> None:
    reader, chunks = read_all(anthropic_stream(["", '{"ci', 'ty": "Os', 'lo"}']))
    assert reader.finished
    assert {(c["id"], c["model"], c["object"]) for c in chunks} == {
        ("msg_1", "claude-x", "chat.completion.chunk")
    }
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    result = accumulate_chunks(chunks)
    assert result["text"] == "Let me check."
    assert result["calls"] == {0: {"id": "toolu_1", "name": "weather", "arguments": '{"city": "Oslo"}'}}
    assert result["finish"] == "tool_calls"
    assert chunks[-1]["choices"] == []  # the usage chunk comes last, as with include_usage
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 16,
        "completion_tokens": 30,
        "total_tokens": 46,
        "prompt_tokens_details": {"cached_tokens": 4},
    }


def test_reader_is_not_finished_without_message_stop() -> None:
    reader, _ = read_all(anthropic_stream(['{"city": "Oslo"}'])[:-1])
    assert not reader.finished


def test_reader_raises_the_in_band_error_with_its_documented_status() -> None:
    reader, _ = read_all(anthropic_stream(['{"city": "Oslo"}'])[:5])
    with pytest.raises(UpstreamStatusError) as caught:
        reader.feed({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert (caught.value.status_code, caught.value.type, caught.value.retryable) == (
        529,
        "overloaded_error",
        True,
    )
    # What the upstream said is for the operator's log, not the caller.
    assert caught.value.message == "anthropic upstream failed mid-stream (overloaded_error)"


def test_an_in_band_authentication_error_is_the_gateways_key_failing() -> None:
    reader, _ = read_all(anthropic_stream(['{"city": "Oslo"}'])[:5])
    with pytest.raises(UpstreamAuthError) as caught:
        reader.feed({"type": "error", "error": {"type": "authentication_error", "message": "sk-ant-...x"}})
    assert (caught.value.status_code, caught.value.retryable) == (502, True)
    assert "sk-ant" not in caught.value.message


@pytest.mark.parametrize(
    "events",
    [
        [{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}}],
        [
            anthropic_stream([])[0],
            {"type": "content_block_delta", "index": 5, "delta": {"type": "text_delta", "text": "x"}},
        ],
        [anthropic_stream([])[0], anthropic_stream([])[0]],
        [{"type": "message_start", "message": {"content": []}}],
        [anthropic_stream([])[0], {"type": "content_block_start", "index": 0}],
    ],
)
def test_reader_rejects_events_outside_the_documented_order(events: list[Json]) -> None:
    with pytest.raises(UpstreamProtocolError):
        read_all(events)


def openai_chunk(delta: Json, finish: str | None = None, **extra: Any) -> Json:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return {
        "id": "chatcmpl-7",
        "object": "chat.completion.chunk",
        "model": "smollm2",
        "choices": [choice],
        **extra,
    }


def interleaved_tool_chunks() -> list[Json]:
    """Text, then two parallel tool calls whose argument fragments arrive interleaved."""
    head = {"type": "function", "function": {"name": "weather", "arguments": ""}}
    return [
        openai_chunk({"role": "assistant", "content": ""}),
        openai_chunk({"content": "Checking"}),
        openai_chunk({"content": " both."}),
        openai_chunk({"tool_calls": [{"index": 0, "id": "call_a", **head}]}),
        openai_chunk({"tool_calls": [{"index": 1, "id": "call_b", **head}]}),
        openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        openai_chunk({"tool_calls": [{"index": 1, "function": {"arguments": '{"city": "Rome"}'}}]}),
        openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' "Oslo"}'}}]}),
        openai_chunk({}, "tool_calls"),
        {**openai_chunk({}), "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 5}},
    ]


def write_all(chunks: list[Json]) -> list[Json]:
    writer = AnthropicStreamWriter(model="claude-alias")
    return [event for chunk in chunks for event in writer.feed(chunk)] + writer.finish() + writer.finish()


def test_writer_emits_the_documented_event_sequence() -> None:
    events = write_all(interleaved_tool_chunks())
    kinds = [e["type"] for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds.count("message_stop") == 1  # a second finish() adds nothing
    start = events[0]["message"]
    assert (start["id"], start["model"], start["content"], start["stop_reason"]) == (
        "msg_7",
        "claude-alias",
        [],
        None,
    )
    # each block opens, receives its deltas and closes before the next one opens
    open_index: int | None = None
    started = 0
    for event in events:
        if event["type"] == "content_block_start":
            assert open_index is None and event["index"] == started
            open_index, started = event["index"], started + 1
        elif event["type"] in ("content_block_delta", "content_block_stop"):
            assert event["index"] == open_index
            open_index = open_index if event["type"] == "content_block_delta" else None
    assert started == 3
    assert events[-2] == {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {
            "input_tokens": 9,
            "output_tokens": 5,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def test_writer_reassembles_interleaved_tool_arguments_by_index() -> None:
    assert accumulate_events(write_all(interleaved_tool_chunks())) == [
        {"type": "text", "text": "Checking both."},
        {"type": "tool_use", "id": "call_a", "name": "weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "call_b", "name": "weather", "input": {"city": "Rome"}},
    ]


def test_writer_on_an_empty_stream_still_sends_a_whole_message() -> None:
    kinds = [e["type"] for e in write_all([])]
    assert kinds == ["message_start", "message_delta", "message_stop"]


def test_anthropic_events_to_openai_and_back_keeps_the_content() -> None:
    events = anthropic_stream(['{"city": ', '"Oslo"}'])
    _, chunks = read_all(events)
    again = write_all(chunks)
    assert accumulate_events(again) == [
        {"type": "thinking", "thinking": "hm", "signature": ""},  # unsigned upstream, unsigned here
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
    ]
    assert again[-2]["delta"]["stop_reason"] == "tool_use"
    assert again[-2]["usage"]["input_tokens"] + again[-2]["usage"]["cache_read_input_tokens"] == 16


async def test_anthropic_events_helper_wraps_an_async_chunk_stream() -> None:
    async def chunks() -> AsyncIterator[Json]:
        for chunk in [openai_chunk({"content": "hi"}), openai_chunk({}, "length")]:
            yield chunk

    events = [event async for event in anthropic_events(chunks(), model="m", input_tokens=3)]
    assert events[0]["message"]["usage"] == {"input_tokens": 3, "output_tokens": 0}
    assert accumulate_events(events) == [{"type": "text", "text": "hi"}]
    assert events[-2]["delta"]["stop_reason"] == "max_tokens"


def test_writer_keeps_consecutive_signed_thinking_blocks_apart() -> None:
    """A signature ends its thinking block (interleaved thinking sends several in a row)."""
    signed = [{"type": "thinking", "thinking": "", "signature": "sig-1"}]
    second = [{"type": "thinking", "thinking": "", "signature": "sig-2"}]
    chunks = [
        openai_chunk({"reasoning_content": "first"}),
        openai_chunk({"thinking_blocks": signed}),
        openai_chunk({"reasoning_content": "second"}),
        openai_chunk({"thinking_blocks": second}),
        openai_chunk({"content": "done"}),
        openai_chunk({}, "stop"),
    ]
    assert accumulate_events(write_all(chunks)) == [
        {"type": "thinking", "thinking": "first", "signature": "sig-1"},
        {"type": "thinking", "thinking": "second", "signature": "sig-2"},
        {"type": "text", "text": "done"},
    ]
