"""Answer checks: structured output and tool calls, over plain data."""

from __future__ import annotations

import json

from hybridgate.cascade.checks import check_structured_output, check_tool_calls, run_checks
from hybridgate.types import ChatRequest, ChatResponse, Json

SCHEMA: Json = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "add",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                "required": ["a", "b"],
            },
        },
    }
]


def request(**extra: object) -> ChatRequest:
    return ChatRequest.model_validate(
        {"model": "auto", "messages": [{"role": "user", "content": "x"}], **extra}
    )


def answer(content: str | None = None, tool_calls: list[Json] | None = None) -> ChatResponse:
    message: Json = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return ChatResponse({"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})


def schema_request() -> ChatRequest:
    return request(response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": SCHEMA}})


def test_no_response_format_means_no_check() -> None:
    assert run_checks(request(), answer("plain text")) == []


def test_valid_schema_answer_passes_untouched() -> None:
    result = check_structured_output(schema_request(), answer('{"name": "Ada", "age": 36}'))
    assert result is not None and result.passed and result.repaired is None


def test_fenced_json_with_trailing_comma_is_repaired() -> None:
    result = check_structured_output(schema_request(), answer('```json\n{"name": "Ada", "age": 36,}\n```'))
    assert result is not None and result.passed and result.reason == "repaired"
    assert result.repaired is not None
    assert json.loads(result.repaired.body["choices"][0]["message"]["content"]) == {"name": "Ada", "age": 36}


def test_schema_violation_fails_with_the_path() -> None:
    result = check_structured_output(schema_request(), answer('{"name": "Ada", "age": -1}'))
    assert result is not None and not result.passed and result.reason.startswith("age:")


def test_prose_is_not_json() -> None:
    result = check_structured_output(
        request(response_format={"type": "json_object"}), answer("Sure! Here it is.")
    )
    assert result is not None and not result.passed


def test_json_object_must_be_an_object() -> None:
    result = check_structured_output(request(response_format={"type": "json_object"}), answer("[1, 2]"))
    assert result is not None and not result.passed and "not an object" in result.reason


def call(name: str, arguments: str) -> Json:
    return {"id": "c1", "type": "function", "function": {"name": name, "arguments": arguments}}


def test_tool_calls_validated_against_their_schema() -> None:
    good = check_tool_calls(request(tools=TOOLS), answer(tool_calls=[call("add", '{"a": 1, "b": 2}')]))
    assert good is not None and good.passed
    unknown = check_tool_calls(request(tools=TOOLS), answer(tool_calls=[call("mul", "{}")]))
    assert unknown is not None and "unknown tool 'mul'" in unknown.reason
    missing = check_tool_calls(request(tools=TOOLS), answer(tool_calls=[call("add", '{"a": 1}')]))
    assert missing is not None and not missing.passed and "'b' is a required property" in missing.reason
    broken = check_tool_calls(request(tools=TOOLS), answer(tool_calls=[call("add", '{"a": 1,')]))
    assert broken is not None and "not JSON" in broken.reason
