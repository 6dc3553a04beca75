"""The Anthropic-compatible edge (and the anthropic backend behind the OpenAI edge), driven by the
official ``anthropic`` and ``openai`` SDKs over real HTTP. Upstreams are stand-ins (conftest.py).
"""

from __future__ import annotations

import json

import anthropic
import httpx
import openai
import pytest
from anthropic.types import MessageParam, ToolParam

from tests.api.conftest import Rig
from tests.standins.anthropic_upstream import Reply as ClaudeReply
from tests.standins.anthropic_upstream import ToolUse
from tests.standins.openai_upstream import Fail, Reply, ToolCall

HELLO: list[MessageParam] = [{"role": "user", "content": "hello there"}]
WEATHER: list[ToolParam] = [
    {
        "name": "get_weather",
        "description": "weather",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]


def test_messages_served_by_an_openai_upstream(gw: Rig, claude: anthropic.Anthropic) -> None:
    raw = claude.messages.with_raw_response.create(
        model="primary", max_tokens=50, system="be brief", messages=HELLO
    )
    message = raw.parse()
    assert message.content[0].type == "text" and message.content[0].text == "echo: hello there"
    assert message.stop_reason == "end_turn" and message.usage.output_tokens > 0
    assert raw.headers["x-hybridgate-backend"] == "primary" and raw.headers["request-id"]
    sent = gw.primary.last_request.body
    assert sent["messages"][0] == {"role": "system", "content": "be brief"}
    assert sent["max_tokens"] == 50
    row = gw.ledger_rows()[-1]
    assert row["api"] == "anthropic" and row["status"] == 200


def test_messages_stream_event_sequence(gw: Rig, claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(model="primary", max_tokens=50, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "echo: hello there"
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0
    raw = httpx.post(
        f"{gw.url}/v1/messages",
        json={"model": "primary", "max_tokens": 20, "stream": True, "messages": HELLO},
    )
    names = [line[7:] for line in raw.text.splitlines() if line.startswith("event: ")]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]


def test_tool_use_round_trip_through_an_openai_upstream(gw: Rig, claude: anthropic.Anthropic) -> None:
    call = ToolCall(name="get_weather", arguments='{"city": "Paris"}')
    gw.primary.script(Reply(tool_calls=[call]), Reply(tool_calls=[call]))
    message = claude.messages.create(model="primary", max_tokens=50, messages=HELLO, tools=WEATHER)
    block = message.content[-1]
    assert message.stop_reason == "tool_use"
    assert block.type == "tool_use" and block.name == "get_weather" and block.input == {"city": "Paris"}
    assert gw.primary.last_request.body["tools"][0]["function"]["name"] == "get_weather"
    with claude.messages.stream(model="primary", max_tokens=50, messages=HELLO, tools=WEATHER) as s:
        final = s.get_final_message()
    tool = final.content[-1]
    assert tool.type == "tool_use" and tool.input == {"city": "Paris"} and final.stop_reason == "tool_use"
    # the tool result goes back as an OpenAI tool message
    follow_up: list[MessageParam] = [
        *HELLO,
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": block.id, "name": "get_weather", "input": {"city": "Paris"}}
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "sunny"}]},
    ]
    claude.messages.create(model="primary", max_tokens=50, messages=follow_up, tools=WEATHER)
    sent = gw.primary.last_request.body["messages"]
    assert sent[-1]["role"] == "tool" and sent[-1]["tool_call_id"] == block.id and "sunny" in str(sent[-1])


def test_anthropic_backend_behind_the_openai_edge(gw: Rig, oai: openai.OpenAI) -> None:
    gw.claude.script(ClaudeReply(tool_uses=[ToolUse(name="get_weather", input={"city": "Oslo"})]))
    reply = oai.chat.completions.create(
        model="claude",
        messages=[{"role": "system", "content": "terse"}, {"role": "user", "content": "hi"}],
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
    )
    calls = reply.choices[0].message.tool_calls or []
    assert reply.choices[0].finish_reason == "tool_calls"
    assert calls[0].type == "function" and json.loads(calls[0].function.arguments) == {"city": "Oslo"}
    sent = gw.claude.last_request
    assert sent.body["system"] == "terse" and sent.headers["x-api-key"] == "sk-ant-test"
    chunks = list(
        oai.chat.completions.create(
            model="claude",
            messages=[{"role": "user", "content": "yo"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: yo"
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens > 0
    row = gw.ledger_rows()[-1]
    assert row["backend"] == "claude" and row["cost_usd"] > 0


def test_anthropic_edge_to_anthropic_backend(gw: Rig, claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(model="claude", max_tokens=30, messages=HELLO)
    assert message.content[0].type == "text" and message.content[0].text == "echo: hello there"


def test_anthropic_errors_in_anthropic_format(gw: Rig, claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        claude.messages.create(model="nope", max_tokens=5, messages=HELLO)
    body = missing.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "not_found_error" and "unknown model 'nope'" in body["error"]["message"]
    response = httpx.post(f"{gw.url}/v1/messages", json={"model": "primary", "messages": HELLO})
    assert response.status_code == 400
    assert response.json()["type"] == "error" and response.json()["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in response.json()["error"]["message"]
    bad = httpx.post(f"{gw.url}/v1/messages", content=b"{oops", headers={"content-type": "application/json"})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    rows = gw.ledger_rows()[-3:]
    assert [r["status"] for r in rows] == [404, 400, 400] and all(r["api"] == "anthropic" for r in rows)


def test_count_tokens_grows_with_the_prompt(gw: Rig, claude: anthropic.Anthropic) -> None:
    small = claude.messages.count_tokens(model="primary", messages=HELLO)
    big = claude.messages.count_tokens(model="primary", messages=[{"role": "user", "content": "word " * 400}])
    assert 0 < small.input_tokens < big.input_tokens


def test_json_schema_on_the_anthropic_tier_is_asked_in_words_and_checked(gw: Rig, oai: openai.OpenAI) -> None:
    gw.claude.script(ClaudeReply(text='{"city": "Oslo"}'))
    schema: dict[str, object] = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    }
    reply = oai.chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "where?"}],
        response_format={"type": "json_schema", "json_schema": {"name": "place", "schema": schema}},
    )
    assert json.loads(reply.choices[0].message.content or "") == {"city": "Oslo"}
    assert '"required":["city"]' in gw.claude.last_request.body["system"]


def test_gateway_timeout_is_anthropics_timeout_error(gw: Rig, claude: anthropic.Anthropic) -> None:
    """A 504 on /v1/messages carries Anthropic's documented type for it, ``timeout_error`` (one
    status-to-type table for the edge and the Anthropic backend). The upstream is a stand-in."""
    gw.primary.script(*[Fail(status=504, type="server_error", message="upstream timed out")] * 3)
    with pytest.raises(anthropic.APIStatusError) as caught:
        claude.messages.create(model="primary", max_tokens=20, messages=HELLO)
    assert caught.value.status_code == 504
    body = caught.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "timeout_error"
    assert gw.ledger_rows()[-1]["status"] == 504
