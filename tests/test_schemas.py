"""Client JSON Schemas are checked and bounded before anything uses them (``hybridgate.wire.schemas``).

Pure functions, plus one real loopback listener: the SSRF canary that must never be contacted.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest
from referencing.exceptions import Unresolvable

from hybridgate.errors import RequestError
from hybridgate.types import ChatRequest, Json
from hybridgate.wire import schemas

CAP = 4096


def refusal(schema: Any) -> str:
    with pytest.raises(RequestError) as caught:
        schemas.checked(schema, "response_format.json_schema.schema", CAP)
    assert caught.value.status_code == 400
    assert caught.value.param == "response_format.json_schema.schema"
    return caught.value.message


@pytest.mark.parametrize(
    ("schema", "says"),
    [
        ({"anyOf": []}, "should be non-empty"),
        ({"oneOf": []}, "should be non-empty"),
        ({"allOf": []}, "should be non-empty"),
        ({"enum": []}, "empty enum"),
        ({"type": "banana"}, "not a valid JSON Schema at /type"),
        ({"type": ["string", 5]}, "not a valid JSON Schema at /type"),
        ({"type": []}, "not a valid JSON Schema at /type"),
        ({"type": "object", "properties": [1]}, "at /properties"),
        ({"$ref": "#/definitions/nope"}, "does not resolve"),
        ({"$ref": "http://169.254.169.254/latest/meta-data"}, "points outside the schema"),
        ({"$ref": "other.json#/x"}, "points outside the schema"),
        ({"properties": {"a": {"$id": "http://example.test/a", "type": "string"}}}, "$id is only allowed"),
        ({"$dynamicRef": "#meta"}, "not supported"),
        ({"enum": ["ok", "nul\x00here"]}, "NUL"),
        ({"const": "\x00"}, "NUL"),
        ({"properties": {"a\x00b": {}}}, "NUL"),
        ({"enum": list(range(schemas.MAX_ENUM + 1))}, "at most"),
        ({"properties": {f"p{i}": {} for i in range(schemas.MAX_PROPERTIES + 1)}}, "at most"),
        ({"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}, "loops back"),
        (
            {"$defs": {"a": {"anyOf": [{"$ref": "#/$defs/a"}, {"type": "null"}]}}, "$ref": "#/$defs/a"},
            "loops",
        ),
        ("a string", "must be a JSON Schema object"),
        (["type", "string"], "must be a JSON Schema object"),
    ],
)
def test_schemas_the_gateway_cannot_use_safely_are_refused(schema: Any, says: str) -> None:
    assert says in refusal(schema)


def test_size_and_depth_are_capped() -> None:
    assert "bytes of JSON" in refusal({"description": "x" * schemas.MAX_SCHEMA_BYTES})
    deep: Json = {"type": "string"}
    for _ in range(schemas.MAX_SCHEMA_DEPTH):
        deep = {"type": "array", "items": deep}
    assert "nests deeper" in refusal(deep)


def test_bounds_are_clamped_to_what_the_output_can_hold() -> None:
    huge = {"type": "string", "minLength": 100_000_000, "maxLength": 100_000_001}
    assert schemas.checked(huge, "p", CAP) == {"type": "string", "minLength": CAP, "maxLength": CAP}
    items = {"type": "array", "minItems": 10**9, "items": {"type": "object", "maxProperties": 10**9}}
    count_cap = CAP // schemas.MAX_CHARS_PER_TOKEN
    assert schemas.checked(items, "p", CAP) == {
        "type": "array",
        "minItems": count_cap,
        "items": {"type": "object", "maxProperties": count_cap},
    }


def test_usable_schemas_pass_with_literals_untouched() -> None:
    schema: Json = {
        "type": "object",
        "properties": {
            'say "hi"': {"const": 'a"b\\c'},
            "pattern": {"type": "string", "pattern": "^[a-z]+$"},  # a property named like a keyword
            "any": True,
            "never": False,
            "tree": {"$ref": "#/$defs/tree"},
        },
        "$defs": {"tree": {"type": "array", "items": {"$ref": "#/$defs/tree"}}},
        "required": ['say "hi"'],
        "additionalProperties": False,
    }
    out = schemas.checked(schema, "p", CAP)
    assert out["properties"]['say "hi"'] == {"const": 'a"b\\c'}
    assert out["properties"]["any"] == {} and out["properties"]["never"] == {"not": {}}
    assert out["additionalProperties"] is False and out["required"] == ['say "hi"']
    assert out["properties"]["pattern"] == schema["properties"]["pattern"]


def test_a_request_gets_its_schemas_checked_with_the_parameter_named() -> None:
    base: Json = {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}
    as_string = {**base, "response_format": {"type": "json_schema", "json_schema": "{}"}}
    with pytest.raises(RequestError) as caught:
        schemas.checked_request(ChatRequest.model_validate(as_string))
    assert caught.value.param == "response_format"
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "banana"}}}
    with pytest.raises(RequestError) as caught:
        schemas.checked_request(ChatRequest.model_validate({**base, "tools": [{"type": "function"}, tool]}))
    assert caught.value.param == "tools[1].function.parameters"
    with pytest.raises(RequestError) as caught:
        schemas.checked_request(ChatRequest.model_validate({**base, "tools": [tool]}), "anthropic")
    assert caught.value.param == "tools.0.input_schema"
    fine = {
        "type": "json_schema",
        "json_schema": {"name": "x", "schema": {"type": "string", "maxLength": 10**6}},
    }
    checked = schemas.checked_request(ChatRequest.model_validate({**base, "response_format": fine}))
    assert checked.response_format is not None
    cap = 10 * schemas.MAX_CHARS_PER_TOKEN  # max_tokens 10
    assert checked.response_format["json_schema"]["schema"] == {"type": "string", "maxLength": cap}


@pytest.fixture
def canary() -> Iterator[tuple[str, socket.socket]]:
    """A loopback listener that no schema may make the gateway contact."""
    with closing(socket.socket()) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", listener


def contacted(listener: socket.socket) -> bool:
    try:
        listener.accept()[0].close()
    except BlockingIOError:
        return False
    return True


def test_the_validator_never_fetches_a_ref(canary: tuple[str, socket.socket]) -> None:
    url, listener = canary
    validator = schemas.validator({"$ref": f"{url}/schema.json"})  # built directly: no edge check
    with pytest.raises(Unresolvable):
        list(validator.iter_errors({"a": 1}))
    assert not contacted(listener)


def test_a_catastrophic_pattern_gives_up_instead_of_hanging() -> None:
    validator = schemas.validator({"type": "string", "pattern": "^(a+)+$"})
    started = time.perf_counter()
    errors = list(validator.iter_errors("a" * 40 + "!"))
    assert time.perf_counter() - started < 5  # with `re` this backtracks for hours
    assert errors and "does not match" in errors[0].message
    assert not list(validator.iter_errors("aaaa"))
    properties = schemas.validator(
        {"patternProperties": {"^x": {"type": "integer"}}, "additionalProperties": False}
    )
    assert not list(properties.iter_errors({"x1": 1}))
    assert [e.message for e in properties.iter_errors({"x1": "no", "y": 1})] == [
        "'no' is not of type 'integer'",
        "Additional properties are not allowed ('y' unexpected)",
    ]
