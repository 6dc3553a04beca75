"""The Responses API edge (``/v1/responses``), driven by the official ``openai`` SDK over real HTTP.

Stand-ins (tests/standins/, none of them the real provider): ``chat`` speaks OpenAI chat
completions, ``claude`` the Anthropic Messages API, and ``responder`` OpenAI's Responses API (an
``openai_compat`` backend with ``api = "responses"``). The gateway is the real app on 127.0.0.1,
with stored responses on (``[responses] store = "local"``) in its SQLite ledger file.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from hybridgate.app import create_app
from hybridgate.config import GatewayConfig
from hybridgate.gateway import Gateway
from tests.api.fuzz_bodies import json_values
from tests.servers import serve_in_thread
from tests.standins.anthropic_upstream import AnthropicStandIn, run_anthropic_standin
from tests.standins.openai_upstream import (
    Fail,
    FailMidStream,
    OpenAIStandIn,
    Reply,
    ToolCall,
    run_openai_standin,
)

ENV = {"CHAT_KEY": "sk-chat", "RESPONDER_KEY": "sk-resp", "CLAUDE_KEY": "sk-ant-test"}
TOOL: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "weather",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


def stored(response: BaseModel) -> object:
    """The response's ``store`` field: on the wire, not declared by this SDK version's model."""
    return (response.model_extra or {})["store"]


@dataclass
class Rig:
    url: str
    gateway: Gateway
    chat: OpenAIStandIn
    responder: OpenAIStandIn
    claude: AnthropicStandIn
    ledger: Path

    def ledger_rows(self) -> list[dict[str, Any]]:
        self.gateway.ledger.flush()
        return list(reversed(self.gateway.ledger.recent(1000)))


def config(chat: str, responder: str, claude: str, ledger: Path, store: str = "local") -> GatewayConfig:
    backend = {"type": "openai_compat", "timeout_s": 5, "provider": "openai"}
    return GatewayConfig.model_validate(
        {
            "ledger": {"path": str(ledger), "flush_interval_s": 0.05},
            "backends": {
                "chat": {**backend, "base_url": chat, "model": "gpt-4o-mini", "api_key_env": "CHAT_KEY"},
                "responder": {
                    **backend,
                    "base_url": responder,
                    "model": "gpt-5",
                    "api_key_env": "RESPONDER_KEY",
                    "api": "responses",
                },
                "claude": {
                    "type": "anthropic",
                    "base_url": claude,
                    "model": "claude-haiku-4-5",
                    "api_key_env": "CLAUDE_KEY",
                    "timeout_s": 5,
                },
            },
            "routes": {
                "auto": {"try": ["chat"]},
                "responder": {"try": ["responder"]},
                "claude": {"try": ["claude"]},
            },
            "responses": {"store": store},
        }
    )


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    ledger = tmp_path_factory.mktemp("responses") / "gw.db"
    with (
        run_openai_standin(api_key="sk-chat") as chat,
        run_openai_standin(api_key="sk-resp", models=("gpt-5",)) as responder,
        run_anthropic_standin(api_key="sk-ant-test") as claude,
    ):
        app = create_app(config(chat.base_url, responder.base_url, claude.base_url, ledger), env=ENV)
        with serve_in_thread(app) as url:
            yield Rig(url, app.state.gateway, chat, responder, claude, ledger)


@pytest.fixture
def gw(rig: Rig) -> Rig:
    rig.chat.reset()
    rig.responder.reset()
    rig.claude.drain()
    return rig


@pytest.fixture
def oai(rig: Rig) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{rig.url}/v1", api_key="caller-key", max_retries=0) as client:
        yield client


def test_create_answers_with_a_response_object_headers_and_a_ledger_row(gw: Rig, oai: openai.OpenAI) -> None:
    raw = oai.responses.with_raw_response.create(
        model="auto",
        input="hello there",
        instructions="be brief",
        max_output_tokens=40,
        metadata={"feature": "faq"},
    )
    response = raw.parse()
    assert response.object == "response" and response.status == "completed"
    assert response.output_text == "echo: hello there"
    assert response.id.startswith("resp_") and stored(response) is True
    assert response.instructions == "be brief" and response.max_output_tokens == 40
    assert (
        response.usage is not None and response.usage.input_tokens > 0 and response.usage.output_tokens == 3
    )
    assert response.usage.input_tokens_details.cached_tokens == 0
    assert raw.headers["x-hybridgate-route"] == "auto" and raw.headers["x-hybridgate-backend"] == "chat"
    assert float(raw.headers["x-hybridgate-cost-usd"]) > 0
    sent = gw.chat.last_request.body
    assert sent["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello there"},
    ]
    assert sent["max_completion_tokens"] == 40 and "store" not in sent and "input" not in sent
    row = gw.ledger_rows()[-1]
    assert (row["api"], row["status"], row["feature"], row["backend"]) == ("responses", 200, "faq", "chat")


def test_stream_sends_the_full_event_sequence(gw: Rig, oai: openai.OpenAI) -> None:
    with oai.responses.stream(model="auto", input="count one two") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == final.output_text == "echo: count one two"
    assert final.status == "completed" and final.usage is not None and final.usage.output_tokens == 4
    row = gw.ledger_rows()[-1]
    assert row["api"] == "responses" and row["stream"] and row["ttft_ms"] is not None


def test_function_call_round_trip_with_previous_response_id(gw: Rig, oai: openai.OpenAI) -> None:
    call = ToolCall(name="get_weather", arguments='{"city": "Paris"}')
    gw.chat.script(Reply(tool_calls=[call]), Reply(content="It is sunny in Paris."))
    first = oai.responses.create(model="auto", input="weather in Paris?", tools=[TOOL], tool_choice="auto")
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and calls[0].call_id == call.id
    assert json.loads(calls[0].arguments) == {"city": "Paris"}
    assert gw.chat.last_request.body["tools"] == [
        {"type": "function", "function": {k: v for k, v in TOOL.items() if k != "type"}}
    ]
    second = oai.responses.create(
        model="auto",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.id, "output": "sunny"}],
        tools=[TOOL],
    )
    assert second.output_text == "It is sunny in Paris." and second.previous_response_id == first.id
    sent = gw.chat.last_request.body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[1]["tool_calls"][0]["id"] == call.id and sent[2] == {
        "role": "tool",
        "content": "sunny",
        "tool_call_id": call.id,
    }
    # a third turn continues the second, which continued the first
    oai.responses.create(model="auto", previous_response_id=second.id, input="and tomorrow?")
    assert [m["role"] for m in gw.chat.last_request.body["messages"]] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]


def test_streamed_tool_call_arguments(gw: Rig, oai: openai.OpenAI) -> None:
    call = ToolCall(name="get_weather", arguments='{"city": "Rome"}')
    gw.chat.script(Reply(tool_calls=[call]))
    with oai.responses.stream(model="auto", input="weather in Rome?", tools=[TOOL]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert len(done) == 1 and json.loads(done[0].arguments) == {"city": "Rome"}
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert deltas == call.arguments
    item = final.output[0]
    assert item.type == "function_call" and item.call_id == call.id and item.status == "completed"


class City(BaseModel):
    city: str
    population: int


def test_structured_output_parse_and_stream(gw: Rig, oai: openai.OpenAI) -> None:
    gw.chat.script(Reply(content='{"city": "Paris", "population": 2100000}'))
    parsed = oai.responses.parse(model="auto", input="biggest French city", text_format=City)
    assert parsed.output_parsed == City(city="Paris", population=2100000)
    fmt = gw.chat.last_request.body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "City"
    assert fmt["json_schema"]["schema"]["required"] == ["city", "population"]
    gw.chat.script(Reply(content='{"city": "Lyon", "population": 520000}'))
    with oai.responses.stream(model="auto", input="another", text_format=City) as stream:
        final = stream.get_final_response()
    assert final.output_parsed == City(city="Lyon", population=520000)


def test_retrieve_input_items_and_delete_are_per_caller(gw: Rig, oai: openai.OpenAI) -> None:
    created = oai.responses.create(
        model="auto",
        input=[
            {"role": "user", "content": "first question"},
            {"role": "user", "content": [{"type": "input_text", "text": "second part"}]},
        ],
    )
    fetched = oai.responses.retrieve(created.id)
    assert fetched.id == created.id and fetched.output_text == created.output_text
    items = oai.responses.input_items.list(created.id, order="asc")
    assert [i.type for i in items.data] == ["message", "message"]
    texts = [i.content[0].text for i in items.data if i.type == "message"]  # type: ignore[union-attr]
    assert texts == ["first question", "second part"]
    newest = oai.responses.input_items.list(created.id, limit=1)  # newest first by default
    assert [i.id for i in newest.data] == [items.data[1].id] and newest.has_more
    older = oai.responses.input_items.list(created.id, limit=1, after=newest.data[0].id)
    assert [i.id for i in older.data] == [items.data[0].id] and not older.has_more
    with openai.OpenAI(base_url=f"{gw.url}/v1", api_key="another-caller", max_retries=0) as other:
        with pytest.raises(openai.NotFoundError):
            other.responses.retrieve(created.id)
        with pytest.raises(openai.NotFoundError):
            other.responses.create(model="auto", previous_response_id=created.id, input="hi")
    oai.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError) as caught:
        oai.responses.retrieve(created.id)
    assert caught.value.body["param"] == "response_id"  # type: ignore[index]


def test_stored_responses_are_encrypted_at_rest(gw: Rig, oai: openai.OpenAI) -> None:
    secret_words = "zebra-quartz-71 lives at 12 Elm Street"
    created = oai.responses.create(model="auto", input=secret_words)
    with sqlite3.connect(gw.ledger) as db:
        rows = db.execute("SELECT tenant, blob FROM responses WHERE id = ?", (created.id,)).fetchall()
    assert len(rows) == 1
    tenant, blob = rows[0]
    assert tenant.startswith("key_") and b"zebra-quartz" not in blob and b"Elm Street" not in blob
    not_stored = oai.responses.create(model="auto", input="keep nothing", store=False)
    assert stored(not_stored) is False
    with pytest.raises(openai.NotFoundError):
        oai.responses.retrieve(not_stored.id)


def test_bad_input_gets_a_400_naming_the_parameter_and_a_ledger_row(gw: Rig, oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.responses.create(model="auto", input="search", tools=[{"type": "web_search"}])
    assert caught.value.body["param"] == "tools[0].type"  # type: ignore[index]
    assert "web_search" in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        oai.responses.create(
            model="auto", input=[{"type": "function_call_output", "call_id": "nobody", "output": "x"}]
        )
    assert caught.value.body["param"] == "input"  # type: ignore[index]
    bad = httpx.post(f"{gw.url}/v1/responses", json={"model": "auto", "input": [{"type": "telepathy"}]})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "input[0].type"
    row = gw.ledger_rows()[-1]
    assert (row["api"], row["status"], row["error_type"]) == ("responses", 400, "invalid_request_error")


def test_failure_after_the_stream_started_is_an_error_event(gw: Rig, oai: openai.OpenAI) -> None:
    gw.chat.script(FailMidStream(after_chunks=3, message="upstream fell over"))
    kinds: list[str] = []
    failed: Any = None
    with oai.responses.stream(model="auto", input="one two three four five") as stream:
        for event in stream:
            kinds.append(event.type)
            if event.type == "response.failed":
                failed = event.response
    assert "response.output_text.delta" in kinds
    assert kinds[-2:] == ["error", "response.failed"]
    # the upstream's own words stay in the gateway's log (backends/base.py: status_error)
    assert failed.status == "failed" and "backend 'chat' failed upstream" in failed.error.message
    row = gw.ledger_rows()[-1]
    assert row["api"] == "responses" and row["status"] == 502


def test_claude_serves_responses_through_the_translation(gw: Rig, oai: openai.OpenAI) -> None:
    response = oai.responses.create(model="claude", input="bonjour")
    assert response.output_text and response.status == "completed"
    with oai.responses.stream(model="claude", input="hola") as stream:
        final = stream.get_final_response()
    assert final.output_text and final.usage is not None and final.usage.output_tokens > 0


# --- egress: the responder backend speaks the Responses API to its upstream --------------------


def test_chat_completions_reach_a_responses_upstream(gw: Rig, oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(
        model="responder",
        messages=[{"role": "system", "content": "short"}, {"role": "user", "content": "ping pong"}],
        max_tokens=20,
    )
    assert reply.choices[0].message.content == "echo: ping pong"
    assert reply.usage is not None and reply.usage.prompt_tokens > 0
    sent = gw.responder.last_request
    assert sent.path == "/v1/responses" and sent.headers["authorization"] == "Bearer sk-resp"
    assert sent.body["model"] == "gpt-5" and sent.body["instructions"] == "short"
    assert sent.body["max_output_tokens"] == 20 and sent.body["store"] is False
    chunks = list(
        oai.chat.completions.create(
            model="responder", messages=[{"role": "user", "content": "stream me"}], stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: stream me"
    assert gw.responder.last_request.body["stream"] is True


def test_tool_calls_from_a_responses_upstream_streamed_and_not(gw: Rig, oai: openai.OpenAI) -> None:
    call = ToolCall(name="get_weather", arguments='{"city": "Oslo"}')
    gw.responder.script(Reply(tool_calls=[call]), Reply(tool_calls=[call]))
    tools: Any = [{"type": "function", "function": {k: v for k, v in TOOL.items() if k != "type"}}]
    messages: Any = [{"role": "user", "content": "weather?"}]
    reply = oai.chat.completions.create(model="responder", messages=messages, tools=tools)
    calls = reply.choices[0].message.tool_calls or []
    assert reply.choices[0].finish_reason == "tool_calls"
    assert calls[0].id == call.id and json.loads(calls[0].function.arguments) == {"city": "Oslo"}  # type: ignore[union-attr]
    assert gw.responder.last_request.body["tools"][0]["name"] == "get_weather"
    stream = oai.chat.completions.create(model="responder", messages=messages, tools=tools, stream=True)
    arguments = "".join(
        t.function.arguments or ""
        for c in stream
        if c.choices
        for t in c.choices[0].delta.tool_calls or []
        if t.function
    )
    assert json.loads(arguments) == {"city": "Oslo"}


def test_failures_of_a_responses_upstream_reach_the_caller(gw: Rig, oai: openai.OpenAI) -> None:
    gw.responder.script(
        Fail(status=429, type="rate_limit_error", message="slow down", code="rate_limit_exceeded"),
        FailMidStream(after_chunks=5, message="responder fell over"),
    )
    messages: Any = [{"role": "user", "content": "one two three four five six"}]
    with pytest.raises(openai.RateLimitError) as limited:
        oai.chat.completions.create(model="responder", messages=messages)
    assert "failed upstream: HTTP 429" in limited.value.message and "slow down" not in limited.value.message
    received: list[str] = []
    with pytest.raises(openai.APIError) as broken:
        for chunk in oai.chat.completions.create(model="responder", messages=messages, stream=True):
            received += [c.delta.content or "" for c in chunk.choices]
    assert "backend 'responder' failed upstream" in broken.value.message
    assert "responder fell over" not in broken.value.message and "".join(received).startswith("echo")
    rows = gw.ledger_rows()[-2:]
    assert [r["status"] for r in rows] == [429, 502] and all(r["route"] == "responder" for r in rows)


def test_messages_and_responses_ingress_reach_a_responses_upstream(gw: Rig, oai: openai.OpenAI) -> None:
    with anthropic.Anthropic(base_url=gw.url, api_key="caller-key", max_retries=0) as claude:
        message = claude.messages.create(
            model="responder", max_tokens=30, messages=[{"role": "user", "content": "from claude"}]
        )
        assert message.content[0].type == "text" and message.content[0].text == "echo: from claude"
        with claude.messages.stream(
            model="responder", max_tokens=30, messages=[{"role": "user", "content": "claude stream"}]
        ) as stream:
            assert stream.get_final_text() == "echo: claude stream"
    with oai.responses.stream(model="responder", input="all the way") as responses_stream:
        final = responses_stream.get_final_response()
    assert final.output_text == "echo: all the way"
    assert gw.responder.last_request.body["input"][0]["content"] == [
        {"type": "input_text", "text": "all the way"}
    ]


def test_storage_off_refuses_previous_response_id_and_answers_store_false(tmp_path: Path) -> None:
    with run_openai_standin(api_key="sk-chat") as chat:
        app = create_app(
            config(chat.base_url, chat.base_url, chat.base_url, tmp_path / "gw.db", store="off"), env=ENV
        )
        with (
            serve_in_thread(app) as url,
            openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) as client,
        ):
            response = client.responses.create(model="auto", input="hi", store=True)
            assert stored(response) is False and response.output_text == "echo: hi"
            with pytest.raises(openai.BadRequestError) as caught:
                client.responses.create(model="auto", input="more", previous_response_id=response.id)
            assert caught.value.body["param"] == "previous_response_id"  # type: ignore[index]
            assert '[responses] store = "local"' in caught.value.message
            with pytest.raises(openai.BadRequestError):
                client.responses.retrieve(response.id)


def test_a_prompt_with_pii_is_kept_only_where_its_policy_allows(tmp_path: Path) -> None:
    email = "ada.lovelace@example.com"
    with run_openai_standin(api_key="sk-chat") as chat:
        rig = config(chat.base_url, chat.base_url, chat.base_url, tmp_path / "gw.db")
        rig.routes["open"] = rig.routes["auto"]
        settings = rig.model_dump(by_alias=True) | {
            # Route policies only tighten the default (docs/privacy.md): `auto` redacts, `open` allows.
            "privacy": {"policy": "allow", "routes": {"auto": "redact"}, "ner_model": None}
        }
        app = create_app(GatewayConfig.model_validate(settings), env=ENV)
        with (
            serve_in_thread(app) as url,
            openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) as client,
        ):
            redacted = client.responses.create(model="auto", input=f"write to {email}")
            assert email not in json.dumps(chat.last_request.body)  # the upstream saw a placeholder
            assert redacted.output_text == f"echo: write to {email}"  # and the caller the real value
            assert stored(redacted) is False
            with pytest.raises(openai.NotFoundError):
                client.responses.retrieve(redacted.id)
            with client.responses.stream(model="auto", input=f"mail {email}") as stream:
                assert stored(stream.get_final_response()) is False
            allowed = client.responses.create(model="open", input=f"write to {email}")
            assert stored(allowed) is True and client.responses.retrieve(allowed.id).id == allowed.id
            plain = client.responses.create(model="auto", input="no personal data here")
            assert stored(plain) is True


async def test_agents_sdk_runs_a_two_tool_agent_through_the_gateway(gw: Rig) -> None:
    """The OpenAI Agents SDK with its default model class (the Responses API) against the
    gateway; the chat stand-in plays the model: two tool calls, then the answer."""
    from agents import Agent, Runner, function_tool, set_tracing_disabled
    from agents.models.openai_responses import OpenAIResponsesModel

    set_tracing_disabled(True)  # the SDK would otherwise export traces to OpenAI
    calls: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(f"weather:{city}")
        return "sunny, 21 C"

    @function_tool
    def get_time(city: str) -> str:
        """The local time in a city."""
        calls.append(f"time:{city}")
        return "10:30"

    weather = ToolCall(name="get_weather", arguments='{"city": "Paris"}')
    clock = ToolCall(name="get_time", arguments='{"city": "Paris"}')
    gw.chat.script(
        Reply(tool_calls=[weather]),
        Reply(tool_calls=[clock]),
        Reply(content="In Paris it is sunny, 21 C, at 10:30."),
        Reply(tool_calls=[weather, clock]),
        Reply(content="Sunny at 10:30."),
    )
    async with openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key="caller-key", max_retries=0) as client:
        agent = Agent(
            name="concierge",
            instructions="Answer with the tools.",
            tools=[get_weather, get_time],
            model=OpenAIResponsesModel(model="auto", openai_client=client),
        )
        result = await Runner.run(agent, "Weather and time in Paris?")
        assert result.final_output == "In Paris it is sunny, 21 C, at 10:30."
        assert calls == ["weather:Paris", "time:Paris"]
        last = gw.chat.last_request.body["messages"]
        assert [m["role"] for m in last] == ["system", "user", "assistant", "tool", "assistant", "tool"]
        assert last[3] == {"role": "tool", "content": "sunny, 21 C", "tool_call_id": weather.id}
        streamed = Runner.run_streamed(agent, "Again, briefly?")
        async for _ in streamed.stream_events():
            pass
        assert streamed.final_output == "Sunny at 10:30."
        assert calls[2:] == ["weather:Paris", "time:Paris"]  # parallel calls, streamed
    rows = gw.ledger_rows()[-5:]
    assert all(r["api"] == "responses" and r["status"] == 200 for r in rows)


ITEM_TYPES = ["message", "function_call", "function_call_output", "reasoning", "item_reference", "telepathy"]
items = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(ITEM_TYPES) | json_values,
        "role": st.sampled_from(["user", "assistant", "system", "developer", "tool"]) | json_values,
        "content": st.text(max_size=20)
        | st.lists(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["input_text", "output_text", "input_image", "refusal", "x"])},
                optional={"text": json_values, "image_url": json_values, "refusal": json_values},
            ),
            max_size=3,
        )
        | json_values,
        "call_id": st.sampled_from(["c1", "c2"]) | json_values,
        "name": st.text(max_size=8) | json_values,
        "arguments": st.text(max_size=8) | json_values,
        "output": st.text(max_size=8) | json_values,
    },
)
bodies = st.fixed_dictionaries(
    {"model": st.sampled_from(["auto", "claude", "responder"]) | json_values},
    optional={
        "input": st.text(max_size=20) | st.lists(items, max_size=4) | json_values,
        "instructions": st.text(max_size=10) | json_values,
        "tools": st.lists(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["function", "web_search"])},
                optional={"name": json_values, "parameters": json_values},
            ),
            max_size=2,
        )
        | json_values,
        "tool_choice": st.sampled_from(["auto", "none", "required"]) | json_values,
        "text": st.fixed_dictionaries({}, optional={"format": json_values}) | json_values,
        "max_output_tokens": json_values,
        "temperature": json_values,
        "store": json_values,
        "previous_response_id": json_values,
        "metadata": json_values,
        "stream": st.booleans() | json_values,
        "reasoning": json_values,
        "junk": json_values,
    },
)


@settings(
    max_examples=int(os.environ.get("HYBRIDGATE_FUZZ_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=bodies)
@example(body={"model": "auto", "input": "", "reasoning": [None]})  # was a 500: the answer echoes reasoning
@example(body={"model": "auto", "input": "hi", "reasoning": {"effort": 3}})
def test_malformed_requests_never_earn_a_5xx(gw: Rig, body: dict[str, Any]) -> None:
    """Property-based: wrong Responses requests get a well-formed OpenAI 4xx, never a 5xx or a traceback."""
    response = httpx.post(f"{gw.url}/v1/responses", content=json.dumps(body).encode(), timeout=30)
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["message"]


def test_with_auth_stored_answers_belong_to_a_key_and_bad_keys_store_nothing(tmp_path: Path) -> None:
    pepper = "test-pepper-0123456789"
    with run_openai_standin(api_key="sk-chat") as chat:
        settings = config(chat.base_url, chat.base_url, chat.base_url, tmp_path / "gw.db").model_dump(
            by_alias=True
        )
        settings["auth"] = {"enabled": True, "keys_path": str(tmp_path / "keys.db")}
        app = create_app(GatewayConfig.model_validate(settings), env={**ENV, "HYBRIDGATE_KEY_PEPPER": pepper})
        gateway: Gateway = app.state.gateway
        assert gateway.access is not None
        with serve_in_thread(app) as url:
            owner, _ = gateway.access.keys.create(environment="default", name="owner")
            other, _ = gateway.access.keys.create(environment="default", name="other")
            with (
                openai.OpenAI(base_url=f"{url}/v1", api_key=owner, max_retries=0) as mine,
                openai.OpenAI(base_url=f"{url}/v1", api_key=other, max_retries=0) as theirs,
                openai.OpenAI(base_url=f"{url}/v1", api_key="sk-made-up", max_retries=0) as nobody,
            ):
                with pytest.raises(openai.AuthenticationError):
                    nobody.responses.create(model="auto", input="store me")
                with sqlite3.connect(tmp_path / "gw.db") as db:
                    assert db.execute("SELECT count(*) FROM responses").fetchone() == (0,)
                created = mine.responses.create(model="auto", input="mine only")
                assert mine.responses.retrieve(created.id).id == created.id
                with pytest.raises(openai.NotFoundError):
                    theirs.responses.retrieve(created.id)
                with pytest.raises(openai.AuthenticationError):
                    nobody.responses.retrieve(created.id)
                with pytest.raises(openai.NotFoundError):
                    theirs.responses.delete(created.id)
                assert mine.responses.retrieve(created.id).id == created.id


def test_cache_and_cascade_serve_responses_requests(tmp_path: Path) -> None:
    """A repeat at temperature 0 is a cache hit; on a cascade route a cheap tier's answer that
    breaks text.format's schema escalates to the next tier (here a Responses upstream)."""
    with run_openai_standin(api_key="sk-chat") as chat, run_openai_standin(api_key="sk-resp") as responder:
        settings = config(chat.base_url, responder.base_url, chat.base_url, tmp_path / "gw.db").model_dump(
            by_alias=True
        )
        settings["routes"]["careful"] = {"try": ["chat", "responder"], "cascade": True}
        settings["cache"] = {"store": "memory"}
        app = create_app(GatewayConfig.model_validate(settings), env=ENV)
        with (
            serve_in_thread(app) as url,
            openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) as client,
        ):
            first = client.responses.with_raw_response.create(
                model="auto", input="same question", temperature=0
            )
            again = client.responses.with_raw_response.create(
                model="auto", input="same question", temperature=0
            )
            assert (
                first.headers["x-hybridgate-cache"] == "miss" and again.headers["x-hybridgate-cache"] == "hit"
            )
            assert again.parse().output_text == first.parse().output_text and len(chat.requests) == 1
            chat.script(Reply(content="Paris, I think"))
            responder.script(Reply(content='{"city": "Paris", "population": 2100000}'))
            raw = client.responses.with_raw_response.parse(
                model="careful", input="capital?", text_format=City
            )
            assert raw.parse().output_parsed == City(city="Paris", population=2100000)
            assert raw.headers["x-hybridgate-backend"] == "responder"
            sent = responder.last_request.body["text"]["format"]
            assert sent["type"] == "json_schema" and sent["name"] == "City"


def test_reasoning_effort_and_thinking_reach_a_responses_upstream_as_reasoning(
    gw: Rig, oai: openai.OpenAI
) -> None:
    """Chat's ``reasoning_effort`` and Anthropic's thinking budget (wire/fields.py) become the
    Responses API's ``reasoning.effort``; chat's ``verbosity`` its ``text.verbosity``."""
    oai.chat.completions.create(
        model="responder",
        reasoning_effort="low",
        verbosity="high",
        messages=[{"role": "user", "content": "hm"}],
    )
    assert gw.responder.last_request.body["reasoning"] == {"effort": "low"}
    assert gw.responder.last_request.body["text"]["verbosity"] == "high"
    with anthropic.Anthropic(base_url=gw.url, api_key="caller-key", max_retries=0) as claude:
        claude.messages.create(
            model="responder",
            max_tokens=30000,
            thinking={"type": "enabled", "budget_tokens": 20000},
            messages=[{"role": "user", "content": "think"}],
            timeout=30,
        )
    assert gw.responder.last_request.body["reasoning"] == {"effort": "high"}
    oai.chat.completions.create(model="responder", messages=[{"role": "user", "content": "plain"}])
    assert "reasoning" not in gw.responder.last_request.body
