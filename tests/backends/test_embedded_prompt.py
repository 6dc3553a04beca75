"""The embedded backend's prompt side: tools convention, tool-call parsing, output schemas.

Pure functions over plain data; no model is loaded.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from hybridgate.backends.embedded.prompt import (
    forced_tool,
    functions,
    output_schema,
    parse_tool_call,
    penalty,
    template_messages,
)
from hybridgate.errors import RequestError
from hybridgate.types import ChatRequest, Json

WEATHER: Json = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME: Json = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
TOOLS = [WEATHER["function"], TIME["function"]]


def chat(messages: list[Json] | None = None, **fields: Any) -> ChatRequest:
    return ChatRequest.model_validate(
        {"model": "local", "messages": messages or [{"role": "user", "content": "hi"}], **fields}
    )


@pytest.mark.parametrize(
    "reply",
    [
        '{"name": "get_weather", "arguments": {"city": "Paris"}}',
        '  {"name": "get_weather", "arguments": {"city": "Paris"}}\n',
        '```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```',
        '{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}',
        '{"name": "get_weather", "parameters": {"city": "Paris"}}',
    ],
)
def test_parse_tool_call_accepts_the_convention(reply: str) -> None:
    call = parse_tool_call(reply, TOOLS)
    assert call is not None
    assert call["type"] == "function"
    assert call["id"].startswith("call_")
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}


def test_parse_tool_call_without_arguments_means_empty_object() -> None:
    call = parse_tool_call('{"name": "get_time"}', TOOLS)
    assert call is not None
    assert call["function"]["arguments"] == "{}"


@pytest.mark.parametrize(
    "reply",
    [
        "The weather in Paris is sunny.",
        '{"name": "launch_rockets", "arguments": {}}',  # not a tool of this request
        '{"name": "get_weather", "arguments": ["Paris"]}',  # arguments must be an object
        '{"name": "get_weather", "arguments": "Paris"}',  # string arguments must be JSON
        '{"name": "get_weather", "arguments": {"city": "Paris"}, "note": "x"}',  # unknown key
        'Sure! {"name": "get_weather", "arguments": {"city": "Paris"}}',  # prose around it
        '{"name": "get_weather", "arguments": {"city": "Par',  # cut off by max_tokens
        "[1, 2]",
        "",
    ],
)
def test_parse_tool_call_rejects_everything_else(reply: str) -> None:
    assert parse_tool_call(reply, TOOLS) is None


def test_each_parsed_call_gets_its_own_id() -> None:
    reply = '{"name": "get_time", "arguments": {}}'
    first, second = parse_tool_call(reply, TOOLS), parse_tool_call(reply, TOOLS)
    assert first is not None and second is not None
    assert first["id"] != second["id"]


def test_functions_keeps_only_function_tools() -> None:
    request = chat(tools=[WEATHER, {"type": "web_search"}, TIME])
    assert [f["name"] for f in functions(request)] == ["get_weather", "get_time"]


def test_tools_are_described_in_a_new_system_message() -> None:
    messages = template_messages(chat(tools=[WEATHER]))
    assert [m["role"] for m in messages] == ["system", "user"]
    assert '"name": "get_weather"' in messages[0]["content"]
    assert '{"name": "<function name>", "arguments"' in messages[0]["content"]
    assert "answer normally" in messages[0]["content"]


def test_tools_are_appended_to_an_existing_system_message() -> None:
    request = chat(
        [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "hi"}], tools=[WEATHER]
    )
    messages = template_messages(request)
    assert messages[0]["role"] == "system"
    assert messages[0]["content"].startswith("Be brief.\n\n")
    assert "get_weather" in messages[0]["content"]


def test_tool_choice_none_leaves_the_prompt_alone() -> None:
    messages = template_messages(chat(tools=[WEATHER], tool_choice="none"))
    assert messages == [{"role": "user", "content": "hi"}]


def test_tool_history_is_rendered_in_the_same_convention() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
    request = chat(
        [
            {"role": "user", "content": "time?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "12:00"},
        ]
    )
    messages = template_messages(request)
    assert messages[1] == {"role": "assistant", "content": '{"name": "get_time", "arguments": {}}'}
    assert messages[2] == {"role": "user", "content": "Result from call_1:\n12:00"}


def test_forced_tool_choices() -> None:
    assert forced_tool(chat(tools=[WEATHER])) is None
    assert forced_tool(chat(tools=[WEATHER], tool_choice="required")) == "*"
    named = {"type": "function", "function": {"name": "get_time"}}
    assert forced_tool(chat(tools=[WEATHER, TIME], tool_choice=named)) == "get_time"
    with pytest.raises(RequestError, match="get_weather, get_time") as caught:
        forced_tool(chat(tools=[WEATHER, TIME], tool_choice={"type": "function", "function": {"name": "x"}}))
    assert caught.value.param == "tool_choice"


def test_output_schema_for_a_forced_call_pins_name_and_arguments() -> None:
    schema = output_schema(chat(tools=[WEATHER], tool_choice="required"))
    assert schema is not None
    assert schema["properties"]["name"] == {"const": "get_weather"}
    assert schema["properties"]["arguments"] == WEATHER["function"]["parameters"]
    both = output_schema(chat(tools=[WEATHER, TIME], tool_choice="required"))
    assert both is not None and len(both["anyOf"]) == 2


def test_output_schema_for_response_formats() -> None:
    assert output_schema(chat()) is None
    assert output_schema(chat(response_format={"type": "text"})) is None
    assert output_schema(chat(response_format={"type": "json_object"})) == {"type": "object"}
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    assert output_schema(chat(response_format=fmt)) == schema
    with pytest.raises(RequestError, match=r"json_schema\.schema"):
        output_schema(chat(response_format={"type": "json_schema", "json_schema": {"name": "x"}}))
    with pytest.raises(RequestError, match="not supported"):
        output_schema(chat(response_format={"type": "yaml"}))


def test_penalties_are_validated() -> None:
    assert penalty(chat(), "frequency_penalty") == 0.0
    assert penalty(chat(frequency_penalty=0.5), "frequency_penalty") == 0.5
    with pytest.raises(RequestError, match="between -2 and 2"):
        penalty(chat(presence_penalty=3), "presence_penalty")
    with pytest.raises(RequestError):
        penalty(chat(presence_penalty="high"), "presence_penalty")
