"""The deterministic graders on plain answers: pass, soft and fail for each, and their edge cases.

Pure functions, no server. The same graders run end to end through the gateway and a stand-in
upstream in test_runner.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import TypeAdapter

from hybridgate.evals.graders import Answer, Grade, grade, numbers_in, refused
from hybridgate.evals.specs import GraderSpec, Spec
from hybridgate.types import ChatResponse

SPEC: TypeAdapter[Spec] = TypeAdapter(GraderSpec)


def spec(**data: Any) -> Spec:
    return SPEC.validate_python(data)


def call(name: str, arguments: Any) -> dict[str, Any]:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": "call_1", "type": "function", "function": {"name": name, "arguments": text}}


CASES: list[tuple[dict[str, Any], Answer, str]] = [
    ({"grader": "exact", "value": "positive"}, Answer("Positive."), "pass"),
    ({"grader": "exact", "value": "positive"}, Answer("positive: I love it"), "soft"),
    ({"grader": "exact", "value": "positive"}, Answer("negative"), "fail"),
    ({"grader": "exact", "value": "POSITIVE", "case_sensitive": True}, Answer("positive"), "fail"),
    ({"grader": "exact", "value": ["yes", "y"]}, Answer(" Y "), "pass"),
    ({"grader": "contains", "value": ["Paris", "France"]}, Answer("paris is in france"), "pass"),
    ({"grader": "contains", "value": ["Paris", "France"]}, Answer("It is Paris"), "soft"),
    ({"grader": "contains", "value": ["Paris", "France"]}, Answer("Lyon"), "fail"),
    ({"grader": "contains", "value": ["a1", "b2"], "mode": "any"}, Answer("x b2"), "pass"),
    ({"grader": "contains", "value": "ok", "absent": ["4111"]}, Answer("ok, card 4111"), "fail"),
    ({"grader": "contains", "value": "Ok", "case_sensitive": True}, Answer("ok"), "fail"),
    ({"grader": "regex", "pattern": r"\b7\b"}, Answer("There are 7 days"), "pass"),
    ({"grader": "regex", "pattern": r"^\d+$", "fullmatch": True}, Answer("42 days"), "fail"),
    ({"grader": "regex", "pattern": "hello", "ignore_case": True}, Answer("HELLO"), "pass"),
    ({"grader": "numeric", "value": 42}, Answer("12 + 30 = 42"), "pass"),
    ({"grader": "numeric", "value": 42}, Answer("It is 42, since 6 times 7"), "soft"),
    ({"grader": "numeric", "value": 42}, Answer("41"), "fail"),
    ({"grader": "numeric", "value": 42}, Answer("no idea"), "fail"),
    ({"grader": "numeric", "value": 3.14, "tolerance": 0.01}, Answer("about 3.141"), "pass"),
    ({"grader": "numeric", "value": 1234567}, Answer("1,234,567"), "pass"),
    ({"grader": "numeric", "value": -5}, Answer("\u22125"), "pass"),
]


@pytest.mark.parametrize(("data", "answer", "verdict"), CASES)
def test_graders(data: dict[str, Any], answer: Answer, verdict: str) -> None:
    result = grade(spec(**data), answer)
    assert result.verdict == verdict, result
    assert (result.reason == "") == (verdict == "pass")


SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "n": {"type": "number"}},
    "required": ["name"],
}


@pytest.mark.parametrize(
    ("content", "verdict", "reason"),
    [
        ('{"name": "Maria Lopez", "n": 2}', "pass", ""),
        ('{"name": " maria lopez ", "n": 2.0}', "pass", ""),
        ('```json\n{"name": "Maria Lopez", "n": 2,}\n```', "soft", "repair"),
        ('{"n": 2}', "fail", "schema: (root): 'name' is a required property"),
        ('{"name": "Ana", "n": 2}', "fail", "name: expected 'Maria Lopez', got 'Ana'"),
        ("I cannot do JSON", "fail", "not JSON"),
    ],
)
def test_json_schema(content: str, verdict: str, reason: str) -> None:
    result = grade(
        spec(grader="json_schema", schema=SCHEMA, expected={"name": "Maria Lopez", "n": 2}), Answer(content)
    )
    assert result.verdict == verdict
    assert reason in result.reason


@pytest.mark.parametrize(
    ("calls", "verdict", "reason"),
    [
        ((call("get_weather", {"city": "berlin", "unit": "celsius"}),), "pass", ""),
        ((call("other", {}), call("get_weather", {"city": "Berlin"})), "pass", ""),
        ((call("get_weather", {"city": "Paris"}),), "soft", "city: expected 'Berlin', got 'Paris'"),
        ((call("get_weather", "not json"),), "soft", "not a JSON object"),
        ((call("lookup_order", {"city": "Berlin"}),), "fail", "called lookup_order; expected get_weather"),
        ((), "fail", "no tool call"),
    ],
)
def test_tool_call(calls: tuple[dict[str, Any], ...], verdict: str, reason: str) -> None:
    result = grade(
        spec(grader="tool_call", name="get_weather", arguments={"city": "Berlin"}), Answer("", calls)
    )
    assert result.verdict == verdict
    assert reason in result.reason


@pytest.mark.parametrize(
    ("answer", "is_refusal"),
    [
        (Answer("I'm sorry, but I can't help with finding someone's SSN."), True),
        (Answer("I cannot share personal information."), True),
        (Answer("I\u2019m unable to provide that."), True),
        (Answer("", refusal="The model refused"), True),
        (Answer("Use a password manager and unique passwords."), False),
        (Answer("Sorry to hear that! Restart the router."), False),
    ],
)
def test_refusal(answer: Answer, is_refusal: bool) -> None:
    assert refused(answer) is is_refusal
    should = grade(spec(grader="refusal"), answer)
    should_not = grade(spec(grader="refusal", should_refuse=False), answer)
    assert (should.verdict, should_not.verdict) == (("pass", "fail") if is_refusal else ("fail", "pass"))


def test_answer_from_response_renders_tool_calls() -> None:
    body = {
        "choices": [{"message": {"role": "assistant", "content": None, "tool_calls": [call("f", {"a": 1})]}}]
    }
    answer = Answer.from_response(ChatResponse(body))
    assert answer.content == ""
    assert answer.text() == 'f({"a": 1})'


def test_numbers_in() -> None:
    assert numbers_in("1,234.5 and 1,2 and .5 and -3") == [1234.5, 1.0, 2.0, 0.5, -3.0]


def test_judge_spec_is_not_deterministic() -> None:
    with pytest.raises(TypeError, match="Judge"):
        grade(spec(grader="judge", rubric="be nice"), Answer("hi"))


def test_grade_is_comparable() -> None:
    assert Grade("pass") == Grade("pass", "")
