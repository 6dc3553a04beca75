"""The Responses <-> chat-completions translation (wire/responses*.py), both ways, without I/O."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hybridgate.errors import RequestError, UpstreamProtocolError, UpstreamStatusError
from hybridgate.types import ChatRequest, Json, Message
from hybridgate.wire.responses import (
    Envelope,
    ResponsesStreamReader,
    ResponsesStreamWriter,
    completion_from_response,
    from_responses_request,
    input_items,
    response_from_completion,
    to_responses_request,
)
from hybridgate.wire.upstream import check_response, check_response_event

TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": True,
}


def test_string_input_instructions_and_parameters_become_a_chat_request() -> None:
    chat = from_responses_request(
        {
            "model": "auto",
            "input": "hello",
            "instructions": "be brief",
            "max_output_tokens": 50,
            "temperature": 0.2,
            "top_p": 0.9,
            "user": "u1",
            "metadata": {"feature": "support"},
            "stream": True,
            "store": True,
            "reasoning": {"effort": "low"},
        }
    )
    assert [(m.role, m.content) for m in chat.messages] == [("system", "be brief"), ("user", "hello")]
    assert chat.max_completion_tokens == 50 and chat.temperature == 0.2 and chat.top_p == 0.9
    assert chat.user == "u1" and chat.metadata == {"feature": "support"} and chat.stream
    assert (chat.model_extra or {})["reasoning_effort"] == "low"
    assert "store" not in chat.upstream_body("m")  # the gateway's own business, never sent on


def test_items_with_images_calls_outputs_and_reasoning() -> None:
    chat = from_responses_request(
        {
            "model": "auto",
            "input": [
                {"role": "developer", "content": "rules"},
                {
                    "type": "message",
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "what is this?"},
                        {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
                    ],
                },
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {
                    "type": "function_call",
                    "call_id": "c1",
                    "name": "get_weather",
                    "arguments": '{"city":"Paris"}',
                },
                {
                    "type": "function_call",
                    "call_id": "c2",
                    "name": "get_weather",
                    "arguments": '{"city":"Rome"}',
                },
                {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
                {"type": "function_call_output", "call_id": "c2", "output": "rain"},
                {"role": "assistant", "content": [{"type": "output_text", "text": "Paris sunny"}]},
            ],
            "tools": [TOOL],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "parallel_tool_calls": False,
        }
    )
    roles = [m.role for m in chat.messages]
    assert roles == ["developer", "user", "assistant", "tool", "tool", "assistant"]
    assert chat.has_images()
    assert chat.messages[1].content == [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
    ]
    calls = chat.messages[2].tool_calls or []
    assert [c["id"] for c in calls] == ["c1", "c2"]  # parallel calls: one assistant turn
    assert (chat.messages[3].tool_call_id, chat.messages[3].content) == ("c1", "sunny")
    assert chat.messages[5].content == "Paris sunny"
    assert chat.tools == [{"type": "function", "function": {k: v for k, v in TOOL.items() if k != "type"}}]
    assert chat.tool_choice == {"type": "function", "function": {"name": "get_weather"}}
    assert (chat.model_extra or {})["parallel_tool_calls"] is False


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ({"type": "json_object"}, {"type": "json_object"}),
        (
            {"type": "json_schema", "name": "city", "schema": {"type": "object"}, "strict": True},
            {
                "type": "json_schema",
                "json_schema": {"name": "city", "schema": {"type": "object"}, "strict": True},
            },
        ),
        ({"type": "text"}, None),
    ],
)
def test_text_format_becomes_response_format(fmt: Json, expected: Json | None) -> None:
    chat = from_responses_request({"model": "m", "input": "x", "text": {"format": fmt}})
    assert chat.response_format == expected


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x"}, "model"),
        ({"model": "m"}, "input"),
        ({"model": "m", "input": 3}, "input"),
        ({"model": "m", "input": [{"type": "telepathy"}]}, "input[0].type"),
        ({"model": "m", "input": [{"role": "wizard", "content": "x"}]}, "input[0].role"),
        (
            {"model": "m", "input": [{"type": "function_call_output", "call_id": "c9", "output": "x"}]},
            "input",
        ),
        ({"model": "m", "input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
        ({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"model": "m", "input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
        ({"model": "m", "input": "x", "tool_choice": "sometimes"}, "tool_choice"),
        ({"model": "m", "input": "x", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
        (
            {"model": "m", "input": "x", "text": {"format": {"type": "json_schema", "name": "n"}}},
            "text.format.schema",
        ),
        ({"model": "m", "input": "x", "max_output_tokens": 0}, "max_output_tokens"),
        ({"model": "m", "input": "x", "temperature": 3}, "temperature"),
        ({"model": "m", "input": "x", "messages": []}, "messages"),
        ({"model": "m", "input": "x", "background": True}, "background"),
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0].type",
        ),
    ],
)
def test_bad_input_is_a_request_error_naming_the_parameter(body: Json, param: str) -> None:
    with pytest.raises(RequestError) as caught:
        from_responses_request(body)
    assert caught.value.status_code == 400
    assert caught.value.param == param, caught.value.message


def test_history_is_continued_not_repeated() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    history = [Message(role="user", content="hi"), Message(role="assistant", tool_calls=[call])]
    chat = from_responses_request(
        {"model": "m", "input": [{"type": "function_call_output", "call_id": "c1", "output": "42"}]}, history
    )
    assert [m.role for m in chat.messages] == ["user", "assistant", "tool"]
    repeated = {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}
    with pytest.raises(RequestError) as caught:
        from_responses_request({"model": "m", "input": [repeated]}, history)
    assert caught.value.param == "input" and "previous_response_id" in caught.value.message


def test_chat_request_becomes_a_responses_request_and_back() -> None:
    chat = ChatRequest.model_validate(
        {
            "model": "route",
            "messages": [
                {"role": "system", "content": "be brief"},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "hi"},
                        {"type": "image_url", "image_url": {"url": "data:x"}},
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            ],
            "tools": [
                {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
            ],
            "tool_choice": "required",
            "max_tokens": 30,
            "temperature": 0.5,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "n", "schema": {"type": "object"}},
            },
        }
    )
    body = to_responses_request(chat, "gpt-5", stream=True)
    assert body["model"] == "gpt-5" and body["instructions"] == "be brief" and body["store"] is False
    assert body["max_output_tokens"] == 30 and body["temperature"] == 0.5 and body["stream"] is True
    assert body["tools"] == [
        {"type": "function", "name": "get_weather", "parameters": {"type": "object"}, "strict": False}
    ]
    assert body["text"] == {"format": {"type": "json_schema", "name": "n", "schema": {"type": "object"}}}
    assert [i["type"] for i in body["input"]] == ["message", "function_call", "function_call_output"]
    assert body["input"][0]["content"][1] == {"type": "input_image", "image_url": "data:x", "detail": "auto"}
    # and the Responses request reads back as the same conversation
    back = from_responses_request({k: v for k, v in body.items() if k != "stream"})
    assert [m.role for m in back.messages] == ["system", "user", "assistant", "tool"]
    assert back.response_format == chat.response_format
    strict = {"name": "get_weather", "parameters": {"type": "object"}, "strict": False}
    assert back.tools == [{"type": "function", "function": strict}]  # chat's default made explicit


def completion(message: Json, finish: str = "stop", usage: Json | None = None) -> Json:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage
        or {
            "prompt_tokens": 7,
            "completion_tokens": 3,
            "total_tokens": 10,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 1},
        },
    }


def envelope(**request: Any) -> Envelope:
    return Envelope("resp_1", "gpt-4o-mini", {"model": "auto", "input": "x", **request}, store=False)


def test_completion_becomes_a_response_object() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
    body = response_from_completion(
        completion(
            {"role": "assistant", "content": "hi", "reasoning_content": "think", "tool_calls": [call]},
            "tool_calls",
        ),
        envelope(metadata={"k": "v"}),
    )
    assert body["object"] == "response" and body["status"] == "completed" and body["store"] is False
    assert [i["type"] for i in body["output"]] == ["reasoning", "message", "function_call"]
    assert body["output_text"] == "hi" and body["metadata"] == {"k": "v"}
    call_item = {"type": "function_call", "status": "completed", "call_id": "c1", "name": "f"}
    assert body["output"][2] | {"id": "x"} == {"id": "x", **call_item, "arguments": '{"a":1}'}
    assert body["usage"] == {
        "input_tokens": 7,
        "input_tokens_details": {"cached_tokens": 4},
        "output_tokens": 3,
        "output_tokens_details": {"reasoning_tokens": 1},
        "total_tokens": 10,
    }
    cut = response_from_completion(completion({"role": "assistant", "content": "hal"}, "length"), envelope())
    assert cut["status"] == "incomplete" and cut["incomplete_details"] == {"reason": "max_output_tokens"}


def test_response_object_becomes_a_completion() -> None:
    response = {
        "id": "resp_9",
        "object": "response",
        "created_at": 5,
        "status": "incomplete",
        "incomplete_details": {"reason": "max_output_tokens"},
        "model": "gpt-5",
        "output": [
            {"type": "reasoning", "id": "rs", "summary": [{"type": "summary_text", "text": "hmm"}]},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "a"}, {"type": "output_text", "text": "b"}],
            },
        ],
        "usage": {
            "input_tokens": 2,
            "output_tokens": 5,
            "total_tokens": 7,
            "output_tokens_details": {"reasoning_tokens": 3},
        },
    }
    chat = completion_from_response(response, "up")
    choice = chat["choices"][0]
    assert choice["message"]["content"] == "ab" and choice["message"]["reasoning_content"] == "hmm"
    assert choice["finish_reason"] == "length"
    assert (
        chat["usage"]["prompt_tokens"] == 2
        and chat["usage"]["completion_tokens_details"]["reasoning_tokens"] == 3
    )


def chunk(delta: Json, finish: str | None = None) -> Json:
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def test_stream_writer_emits_the_documented_sequence() -> None:
    writer = ResponsesStreamWriter(envelope())
    events = writer.start()
    for c in [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
        chunk({}, "tool_calls"),
        {"id": "c", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}},
    ]:
        events += writer.feed(c)
    events += writer.finish()
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[6]["text"] == "Hello" and events[12]["arguments"] == '{"a":1}'
    final = events[-1]["response"]
    assert final["status"] == "completed" and final["output_text"] == "Hello"
    assert final["usage"]["output_tokens"] == 4
    assert events[0]["response"]["status"] == "in_progress" and events[0]["response"]["output"] == []


def test_stream_writer_failure_and_incomplete() -> None:
    writer = ResponsesStreamWriter(envelope())
    events = writer.start() + writer.feed(chunk({"content": "par"})) + writer.fail("upstream_error", "boom")
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert events[-1]["response"]["error"] == {"code": "upstream_error", "message": "boom"}
    cut = ResponsesStreamWriter(envelope())
    done = cut.start() + cut.feed(chunk({"content": "x"}, "length")) + cut.finish()
    assert done[-1]["type"] == "response.incomplete"
    assert done[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def responses_events(text: str, call: bool) -> list[Json]:
    created = {"id": "resp_1", "object": "response", "model": "gpt-5", "created_at": 3, "output": []}
    events: list[Json] = [
        {"type": "response.created", "response": created},
        {"type": "response.in_progress", "response": created},
    ]
    events += [
        {
            "type": "response.output_text.delta",
            "item_id": "m",
            "output_index": 0,
            "content_index": 0,
            "delta": t,
        }
        for t in text
    ]
    if call:
        item = {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "f", "arguments": ""}
        events += [
            {"type": "response.output_item.added", "output_index": 1, "item": item},
            {
                "type": "response.function_call_arguments.delta",
                "item_id": "fc_1",
                "output_index": 1,
                "delta": '{"a":',
            },
            {
                "type": "response.function_call_arguments.delta",
                "item_id": "fc_1",
                "output_index": 1,
                "delta": "1}",
            },
            {
                "type": "response.function_call_arguments.done",
                "item_id": "fc_1",
                "output_index": 1,
                "arguments": '{"a":1}',
            },
        ]
    final = {
        **created,
        "status": "completed",
        "usage": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
    }
    return [*events, {"type": "response.completed", "response": final}]


def test_stream_reader_turns_events_into_chunks() -> None:
    reader = ResponsesStreamReader("up")
    chunks = [c for e in responses_events("hey", call=True) for c in reader.feed(e)]
    assert reader.finished
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    arguments = "".join(
        t["function"]["arguments"]
        for c in chunks
        if c["choices"]
        for t in c["choices"][0]["delta"].get("tool_calls") or []
    )
    assert text == "hey" and json.loads(arguments) == {"a": 1}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["completion_tokens"] == 2 and chunks[-1]["choices"] == []


def test_stream_reader_raises_on_in_band_errors() -> None:
    reader = ResponsesStreamReader("up")
    reader.feed(responses_events("", call=False)[0])
    with pytest.raises(UpstreamStatusError) as caught:
        reader.feed({"type": "error", "code": "rate_limit_exceeded", "message": "slow down"})
    assert caught.value.status_code == 429 and caught.value.retryable


def test_input_items_get_ids() -> None:
    items = input_items("hi")
    assert items[0]["type"] == "message" and items[0]["content"] == [{"type": "input_text", "text": "hi"}]
    assert items[0]["id"].startswith("msg_")
    call = input_items([{"type": "function_call_output", "call_id": "c", "output": "x"}])[0]
    assert call["id"].startswith("fco_") and call["call_id"] == "c"


def test_stream_writer_reasoning_then_refusal() -> None:
    writer = ResponsesStreamWriter(envelope())
    events = writer.start()
    for c in [
        chunk({"reasoning_content": "hm"}),
        chunk({"reasoning_content": "m"}),
        chunk({"refusal": "no"}),
    ]:
        events += writer.feed(c)
    events += writer.finish()
    assert [e["type"] for e in events[2:]] == [
        "response.output_item.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.refusal.delta",
        "response.refusal.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    output = events[-1]["response"]["output"]
    assert output[0]["content"] == [{"type": "reasoning_text", "text": "hmm"}]
    assert output[1]["content"] == [{"type": "refusal", "refusal": "no"}]
    assert [e["output_index"] for e in events[2:-1]] == [0] * 5 + [1] * 6


@pytest.mark.parametrize(
    "body",
    [
        {"object": "response", "output": []},  # no id
        {"id": "r", "object": "chat.completion", "output": []},
        {"id": "r", "object": "response", "output": "text"},
        {"id": "r", "object": "response", "output": [{"type": "message", "content": "hi"}]},
        {
            "id": "r",
            "object": "response",
            "output": [{"type": "message", "content": [{"type": "output_text", "text": 5}]}],
        },
        {"id": "r", "object": "response", "output": [], "usage": {"input_tokens": "many"}},
    ],
)
def test_a_malformed_response_from_upstream_is_a_protocol_error(body: Json) -> None:
    with pytest.raises(UpstreamProtocolError):
        check_response(body, "backend 'up'")


def test_malformed_stream_events_are_protocol_errors() -> None:
    check_response_event({"type": "response.output_text.delta", "delta": "ok"}, "up")
    for event in [
        {"delta": "no type"},
        {"type": "response.output_text.delta", "delta": 7},
        {"type": "response.output_item.added", "item": "fc"},
        {"type": "response.completed", "response": {"id": "r", "object": "response", "output": None}},
    ]:
        with pytest.raises(UpstreamProtocolError):
            check_response_event(event, "up")
