"""Loading golden files: the shipped example, and malformed files reported by file, case and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from hybridgate.errors import GoldenFileError
from hybridgate.evals.golden import case_request, load_golden
from hybridgate.evals.specs import Judge
from tests.evals.conftest import write

EXAMPLE = Path(__file__).parents[2] / "examples" / "golden.toml"

GOOD = """
name = "tiny"
[defaults]
max_tokens = 20
system = "Be brief."
[tools.get_weather]
description = "Weather for a city."
parameters = { type = "object", properties = { city = { type = "string" } }, required = ["city"] }

[[cases]]
id = "weather"
tags = ["tools"]
prompt = "Weather in Oslo?"
tools = ["get_weather"]
expect = { grader = "tool_call", name = "get_weather", arguments = { city = "Oslo" } }

[[cases]]
id = "json"
prompt = "JSON please"
response_format = "json_schema"
max_tokens = 5
temperature = 0.5
expect = { grader = "json_schema", schema = { type = "object" } }
"""


def test_the_example_has_fifty_cases_covering_every_area() -> None:
    golden = load_golden(EXAMPLE)
    assert len(golden.cases) == 50
    tags = {t for c in golden.cases for t in c.tags}
    assert {"chat", "extraction", "arithmetic", "summarisation", "classification", "tools", "pii"} <= tags
    graders = {c.expect.grader for c in golden.cases}
    assert graders == {
        "exact",
        "contains",
        "regex",
        "json_schema",
        "numeric",
        "tool_call",
        "refusal",
        "judge",
    }
    assert all((c.max_tokens or golden.defaults.max_tokens) <= 64 for c in golden.cases)


def test_case_request_carries_tools_system_and_response_format(tmp_path: Path) -> None:
    golden = load_golden(write(tmp_path / "g.toml", GOOD))
    weather, structured = golden.cases
    request = case_request(golden, weather, "local")
    assert request.model == "local"
    assert [m.role for m in request.messages] == ["system", "user"]
    assert request.max_tokens == 20 and request.temperature == 0.0
    assert request.tools == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city.",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]
    request = case_request(golden, structured, "cloud")
    assert request.max_tokens == 5 and request.temperature == 0.5
    assert request.response_format == {
        "type": "json_schema",
        "json_schema": {"name": "json", "schema": {"type": "object"}},
    }


def problems(tmp_path: Path, text: str) -> str:
    with pytest.raises(GoldenFileError) as caught:
        load_golden(write(tmp_path / "bad.toml", text))
    return caught.value.message


CASE = '[[cases]]\nid = "{id}"\nprompt = "hi"\n'


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            'expect = { grader = "contains", value = "x", colour = "red" }',
            "bad.toml: case 'c1' (cases[0]): expect.colour: unknown field",
        ),
        ('expect = { grader = "exact" }', "bad.toml: case 'c1' (cases[0]): expect.value: Field required"),
        (
            'expect = { grader = "fuzzy" }',
            "case 'c1' (cases[0]): expect.grader: missing or unknown; one of exact",
        ),
        ('expect = { value = "x" }', "case 'c1' (cases[0]): expect.grader: missing or unknown"),
        (
            'expect = { grader = "regex", pattern = "(" }',
            "expect.pattern: Value error, not a regular expression",
        ),
        (
            'expect = { grader = "json_schema", schema = { type = 5 } }',
            "expect.schema: Value error, not a JSON schema",
        ),
        (
            'expect = { grader = "numeric", value = "many" }',
            "case 'c1' (cases[0]): expect.value: Input should be",
        ),
        ('tools = ["nope"]\nexpect = { grader = "refusal" }', "tools: unknown tool 'nope'; defined: none"),
        ('messages = []\nexpect = { grader = "refusal" }', "give exactly one of 'prompt' or 'messages'"),
        (
            'temperature = 9\nexpect = { grader = "refusal" }',
            "case 'c1' (cases[0]): temperature: Input should be",
        ),
        ("", "case 'c1' (cases[0]): expect: Field required"),
    ],
)
def test_malformed_cases_name_file_case_and_field(tmp_path: Path, body: str, expected: str) -> None:
    message = problems(tmp_path, CASE.format(id="c1") + body + "\n")
    assert expected in message
    assert str(tmp_path / "bad.toml") in message


def test_every_bad_case_is_reported_at_once(tmp_path: Path) -> None:
    good = CASE.format(id="ok") + 'expect = { grader = "refusal" }\n'
    text = good + good + "[[cases]]\nprompt = 'no id'\nexpect = { grader = 'refusal' }\n"
    message = problems(tmp_path, text)
    assert "case 'ok' (cases[1]): id: duplicate case id 'ok'" in message
    assert "case cases[2] (no id): id: Field required" in message


def test_top_level_problems(tmp_path: Path) -> None:
    assert "bad.toml: cases: Field required" in problems(tmp_path, 'name = "x"\n')
    assert "bad.toml: defaults.max_token: unknown field" in problems(tmp_path, "[defaults]\nmax_token = 3\n")
    assert "not valid TOML" in problems(tmp_path, "[[cases]\n")
    with pytest.raises(GoldenFileError, match="not found"):
        load_golden(tmp_path / "missing.toml")


def test_judge_defaults(tmp_path: Path) -> None:
    text = CASE.format(id="j") + 'expect = { grader = "judge", rubric = "is kind" }\n'
    (case,) = load_golden(write(tmp_path / "j.toml", text)).cases
    assert isinstance(case.expect, Judge) and case.expect.route is None and case.expect.max_tokens == 64
