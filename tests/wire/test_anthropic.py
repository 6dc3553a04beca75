"""Request translation tests for wire/anthropic_requests.py, both directions, over plain data.

No server is involved; the Anthropic shapes below follow the documented Messages API format.
Responses are in test_anthropic_responses.py, streams in test_anthropic_stream.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from hybridgate.errors import RequestError
from hybridgate.types import ChatRequest, Json
from hybridgate.wire.anthropic_requests import from_anthropic_request, to_anthropic_request

PNG = "iVBORw0KGgo="
WEATHER_SCHEMA: Json = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def chat(**fields: Any) -> ChatRequest:
    fields.setdefault("model", "auto")
    return ChatRequest.model_validate(fields)


def test_system_and_developer_messages_are_hoisted_in_order() -> None:
    request = chat(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        ]
    )
    body = to_anthropic_request(request, "claude-x", default_max_tokens=64)
    assert body["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Answer in French."},
    ]
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    single = chat(messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}])
    assert to_anthropic_request(single, "claude-x", default_max_tokens=64)["system"] == "Be brief."


def test_sampling_limits_and_metadata() -> None:
    request = chat(
        messages=[{"role": "user", "content": "hi"}], temperature=1.7, top_p=0.9, stop="END", user="u-1"
    )
    body = to_anthropic_request(request, "claude-x", default_max_tokens=64, stream=True)
    assert body["max_tokens"] == 64  # Anthropic requires it; the default fills in
    assert body["temperature"] == 1.0  # OpenAI allows up to 2, Anthropic up to 1
    assert (body["top_p"], body["stop_sequences"], body["stream"]) == (0.9, ["END"], True)
    assert body["metadata"] == {"user_id": "u-1"}
    limited = chat(messages=[{"role": "user", "content": "hi"}], max_completion_tokens=7, max_tokens=9)
    assert to_anthropic_request(limited, "claude-x", default_max_tokens=64)["max_tokens"] == 7
    assert "stream" not in to_anthropic_request(limited, "claude-x", default_max_tokens=64)


def test_images_become_base64_and_url_sources() -> None:
    parts = [
        {"type": "text", "text": "compare"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.test/cat.jpg"}},
    ]
    body = to_anthropic_request(
        chat(messages=[{"role": "user", "content": parts}]), "c", default_max_tokens=8
    )
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "compare"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.test/cat.jpg"}},
    ]


@pytest.mark.parametrize(
    ("openai_choice", "parallel", "anthropic_choice"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        ({"type": "function", "function": {"name": "weather"}}, None, {"type": "tool", "name": "weather"}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        (None, None, None),
    ],
)
def test_tools_and_tool_choice(
    openai_choice: Any, parallel: bool | None, anthropic_choice: Json | None
) -> None:
    tool = {
        "type": "function",
        "function": {"name": "weather", "description": "Weather", "parameters": WEATHER_SCHEMA},
    }
    fields: Json = {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [tool],
        "tool_choice": openai_choice,
    }
    if parallel is not None:
        fields["parallel_tool_calls"] = parallel
    body = to_anthropic_request(chat(**fields), "c", default_max_tokens=8)
    assert body["tools"] == [{"name": "weather", "description": "Weather", "input_schema": WEATHER_SCHEMA}]
    assert body.get("tool_choice") == anthropic_choice


def tool_history() -> list[Json]:
    calls = [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
        },
        {
            "id": "call_2",
            "type": "function",
            "function": {"name": "weather", "arguments": '{"city": "Rome"}'},
        },
    ]
    return [
        {"role": "user", "content": "Weather in Oslo and Rome?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_1", "content": "-3C"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "21C"}]},
        {"role": "user", "content": "Thanks; which is warmer?"},
    ]


def test_tool_calls_and_consecutive_tool_results_merge_into_one_user_turn() -> None:
    body = to_anthropic_request(chat(messages=tool_history()), "c", default_max_tokens=8)
    assert [turn["role"] for turn in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][1]["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "call_2", "name": "weather", "input": {"city": "Rome"}},
    ]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "-3C"},
        {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "21C"}]},
        {"type": "text", "text": "Thanks; which is warmer?"},
    ]


def test_anthropic_request_round_trips_through_chat_request() -> None:
    original: Json = {
        "model": "claude-x",
        "max_tokens": 300,
        "system": "Be brief.",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this image, and the weather?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "A cat. Checking weather."},
                    {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "-3C"},
                    {"type": "text", "text": "Thanks."},
                ],
            },
        ],
        "tools": [{"name": "weather", "description": "Weather", "input_schema": WEATHER_SCHEMA}],
        "tool_choice": {"type": "tool", "name": "weather", "disable_parallel_tool_use": True},
        "stop_sequences": ["END"],
        "temperature": 0.5,
        "top_p": 0.9,
        "metadata": {"user_id": "u-1"},
        "stream": True,
    }
    request = from_anthropic_request(original)
    assert request.messages[0].role == "system"
    assert [m.role for m in request.messages[1:]] == ["user", "assistant", "tool", "user"]
    assert request.stream_options == {"include_usage": True}  # message_delta needs usage
    assert to_anthropic_request(request, "claude-x", default_max_tokens=1, stream=True) == original


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "c", "messages": [{"role": "user", "content": "hi"}]}, "max_tokens"),
        ({"model": "c", "max_tokens": 5, "messages": "hi"}, "messages"),
        (
            {"model": "c", "max_tokens": 5, "messages": [{"role": "tool", "content": "x"}]},
            "messages.0.role",
        ),
        (
            {
                "model": "c",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "web_search_20250305", "name": "web_search"}],
            },
            "tools",
        ),
    ],
)
def test_malformed_anthropic_requests_are_request_errors(body: Json, param: str) -> None:
    with pytest.raises(RequestError) as caught:
        from_anthropic_request(body)
    assert caught.value.param == param


def test_unsendable_openai_content_is_a_request_error() -> None:
    audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    with pytest.raises(RequestError, match="input_audio"):
        to_anthropic_request(chat(messages=[{"role": "user", "content": [audio]}]), "c", default_max_tokens=8)
    broken = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{city"}}
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": [broken]}]
    with pytest.raises(RequestError, match="weather"):
        to_anthropic_request(chat(messages=messages), "c", default_max_tokens=8)
