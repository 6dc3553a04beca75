"""Client JSON Schemas at both edges, through the official SDKs, in front of cloud stand-ins.

The upstreams are stand-ins (``conftest.py``); the OpenAI one echoes the user's message, so a JSON
message comes back as a JSON answer that ``cascade/checks.py`` validates against the request's schema.
That is where a ``$ref`` to a URL used to be fetched: an SSRF canary (``tests/canary.py``, a
loopback listener) must see no connection at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.api.conftest import Rig
from tests.canary import Canary, run_canary
from tests.standins.openai_upstream import Reply, ToolCall

ECHOED_JSON: Any = [{"role": "user", "content": '{"a": 1}'}]


@pytest.fixture
def canary() -> Iterator[Canary]:
    with run_canary() as canary:
        yield canary


def fmt(schema: Any) -> Any:
    return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}


def tool(parameters: Any) -> Any:
    return {"type": "function", "function": {"name": "lookup", "parameters": parameters}}


def hostile_refs(url: str) -> list[Any]:
    return [
        {"$ref": f"{url}/schema.json"},
        {"type": "object", "properties": {"a": {"$ref": f"{url}/a.json#/x"}}},
        {"$id": f"{url}/root.json", "$ref": "other.json"},
    ]


def test_a_ref_to_a_url_is_refused_and_never_fetched(gw: Rig, oai: openai.OpenAI, canary: Canary) -> None:
    served = gw.primary.served
    for schema in hostile_refs(canary.url):
        with pytest.raises(openai.BadRequestError) as caught:
            oai.chat.completions.create(model="primary", messages=ECHOED_JSON, response_format=fmt(schema))
        assert caught.value.param == "response_format.json_schema.schema"
        assert "points outside the schema" in caught.value.message
    call = ToolCall(name="lookup", arguments='{"a": 1}')
    gw.primary.script(*[Reply(tool_calls=[call])] * 3)
    for schema in hostile_refs(canary.url):
        with pytest.raises(openai.BadRequestError) as caught:
            oai.chat.completions.create(model="primary", messages=ECHOED_JSON, tools=[tool(schema)])
        assert caught.value.param == "tools[0].function.parameters"
    assert canary.hits == []
    assert gw.primary.served == served  # refused at the edge: the upstream never saw them


def test_anthropic_tools_with_a_ref_to_a_url_are_refused(claude: anthropic.Anthropic, canary: Canary) -> None:
    for schema in hostile_refs(canary.url):
        with pytest.raises(anthropic.BadRequestError) as caught:
            claude.messages.create(
                model="claude",
                max_tokens=16,
                messages=[{"role": "user", "content": "hi"}],
                tools=[{"name": "lookup", "input_schema": schema}],
            )
        assert "tools.0.input_schema" in caught.value.message
    assert canary.hits == []


BROKEN: list[tuple[Any, str]] = [
    ("{}", "response_format"),  # json_schema given as a string
    ({"name": "x", "schema": {"$ref": "#/definitions/nope"}}, "response_format.json_schema.schema"),
    ({"name": "x", "schema": {"type": ["string", 5]}}, "response_format.json_schema.schema"),
    ({"name": "x", "schema": {"type": "banana"}}, "response_format.json_schema.schema"),
    ({"name": "x", "schema": {"type": "object", "properties": [1]}}, "response_format.json_schema.schema"),
    ({"name": "x", "schema": {"anyOf": []}}, "response_format.json_schema.schema"),
]


@pytest.mark.parametrize(("json_schema", "param"), BROKEN)
def test_a_broken_response_format_is_a_400_naming_the_parameter(
    gw: Rig, oai: openai.OpenAI, json_schema: Any, param: str
) -> None:
    before = len(gw.ledger_rows())
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(
            model="primary",
            messages=ECHOED_JSON,
            response_format={"type": "json_schema", "json_schema": json_schema},
        )
    assert caught.value.param == param
    rows = gw.ledger_rows()
    assert len(rows) == before + 1 and rows[-1]["status"] == 400


@pytest.mark.parametrize(
    "schema", [{"$ref": "#/definitions/nope"}, {"type": ["string", 5]}, {"type": "banana"}, {"anyOf": []}]
)
def test_a_broken_tool_schema_is_a_400_on_both_edges(
    oai: openai.OpenAI, claude: anthropic.Anthropic, schema: Any
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model="primary", messages=ECHOED_JSON, tools=[tool(schema)])
    assert caught.value.param == "tools[0].function.parameters"
    with pytest.raises(anthropic.BadRequestError) as refused:
        claude.messages.create(
            model="claude",
            max_tokens=16,
            messages=[{"role": "user", "content": "hi"}],
            tools=[{"name": "lookup", "input_schema": schema}],
        )
    assert "tools.0.input_schema" in refused.value.message
    assert refused.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]


def test_a_usable_schema_still_reaches_the_upstream_with_its_bounds_clamped(
    gw: Rig, oai: openai.OpenAI
) -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "s": {"type": "string", "maxLength": 10**9}},
    }
    reply = oai.chat.completions.create(
        model="primary", messages=ECHOED_JSON, response_format=fmt(schema), max_tokens=100
    )
    assert reply.choices[0].message.content == '{"a": 1}'
    sent = gw.primary.last_request.body["response_format"]["json_schema"]["schema"]
    assert sent["properties"]["s"]["maxLength"] == 100 * 16  # what 100 tokens can hold


def test_answer_checks_past_their_budget_fail_the_request_clearly(
    gw: Rig, oai: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checks run on a thread within ``CHECK_TIMEOUT_S``; an impossible budget shows the outcome."""
    monkeypatch.setattr("hybridgate.cascade.core.CHECK_TIMEOUT_S", 0.0)
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(
            model="primary", messages=ECHOED_JSON, response_format=fmt({"type": "object"})
        )
    assert caught.value.code == "schema_too_complex"
    assert "took over 0s" in caught.value.message
    plain = oai.chat.completions.create(model="primary", messages=ECHOED_JSON)  # no schema: checked inline
    assert plain.choices[0].message.content == 'echo: {"a": 1}'


def test_the_responses_edge_checks_its_schemas_too(gw: Rig, oai: openai.OpenAI, canary: Canary) -> None:
    text: Any = {"format": {"type": "json_schema", "name": "x", "schema": {"type": "banana"}}}
    with pytest.raises(openai.BadRequestError) as caught:
        oai.responses.create(model="primary", input="hi", text=text, store=False)
    assert caught.value.param == "text.format.schema"
    tools: Any = [{"type": "function", "name": "f", "parameters": {"$ref": f"{canary.url}/s.json"}}]
    with pytest.raises(openai.BadRequestError) as caught:
        oai.responses.create(model="primary", input="hi", tools=tools, store=False)
    assert caught.value.param == "tools[0].parameters"
    assert canary.hits == []
