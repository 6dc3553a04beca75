"""LangChain's ChatOpenAI and ChatAnthropic as clients of the gateway: invoke, stream, bind_tools,
with_structured_output, with the real model names their docs use.

Stand-ins (tests/compat/conftest.py) answer upstream and record what they received: ``primary``
speaks OpenAI's format (gpt-4o-mini), ``claude`` Anthropic's. The gateway is the real app.
"""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from tests.api.conftest import Rig
from tests.standins.anthropic_upstream import Reply as ClaudeReply
from tests.standins.anthropic_upstream import ToolUse
from tests.standins.openai_upstream import Reply, ToolCall

langchain_openai = pytest.importorskip("langchain_openai")
langchain_anthropic = pytest.importorskip("langchain_anthropic")


class Weather(BaseModel):
    """The weather in a city."""

    city: str
    celsius: int


def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


def chat_openai(gw: Rig, model: str = "gpt-4o-mini") -> object:
    return langchain_openai.ChatOpenAI(
        model=model, base_url=f"{gw.url}/v1", api_key="caller-key", max_retries=0
    )


def chat_anthropic(gw: Rig, model: str = "claude-sonnet-4-5") -> object:
    return langchain_anthropic.ChatAnthropic(
        model=model, base_url=gw.url, api_key="caller-key", max_retries=0
    )


def test_chat_openai_invoke_and_stream(gw: Rig) -> None:
    llm = chat_openai(gw)
    assert llm.invoke("hello there").content  # type: ignore[attr-defined]
    assert gw.primary.last_request.body["model"] == "gpt-4o-mini"
    streamed = "".join(str(chunk.content) for chunk in llm.stream("hello stream"))  # type: ignore[attr-defined]
    assert "hello stream" in streamed


def test_chat_openai_bind_tools(gw: Rig) -> None:
    gw.primary.script(Reply(tool_calls=[ToolCall(name="get_weather", arguments='{"city": "Oslo"}')]))
    reply = chat_openai(gw).bind_tools([get_weather]).invoke("weather in Oslo?")  # type: ignore[attr-defined]
    assert reply.tool_calls[0]["name"] == "get_weather" and reply.tool_calls[0]["args"] == {"city": "Oslo"}
    assert gw.primary.last_request.body["tools"][0]["function"]["name"] == "get_weather"


def test_chat_openai_with_structured_output(gw: Rig) -> None:
    gw.primary.script(Reply(content=json.dumps({"city": "Oslo", "celsius": 4})))
    result = chat_openai(gw).with_structured_output(Weather).invoke("Oslo weather")  # type: ignore[attr-defined]
    assert result == Weather(city="Oslo", celsius=4)


def test_chat_anthropic_invoke_and_stream(gw: Rig) -> None:
    llm = chat_anthropic(gw)
    assert llm.invoke("hello there").content  # type: ignore[attr-defined]
    assert gw.claude.last_request.body["model"] == "claude-sonnet-4-5"
    streamed = "".join(str(chunk.content) for chunk in llm.stream("hello stream"))  # type: ignore[attr-defined]
    assert "hello stream" in streamed


def test_chat_anthropic_bind_tools(gw: Rig) -> None:
    gw.claude.script(ClaudeReply(tool_uses=[ToolUse(name="get_weather", input={"city": "Oslo"})]))
    reply = chat_anthropic(gw).bind_tools([get_weather]).invoke("weather in Oslo?")  # type: ignore[attr-defined]
    assert reply.tool_calls[0]["name"] == "get_weather" and reply.tool_calls[0]["args"] == {"city": "Oslo"}


@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
def test_chat_anthropic_with_structured_output(gw: Rig, method: str) -> None:
    if method == "json_schema":
        gw.claude.script(ClaudeReply(text=json.dumps({"city": "Oslo", "celsius": 4})))
    else:
        gw.claude.script(
            ClaudeReply(tool_uses=[ToolUse(name="Weather", input={"city": "Oslo", "celsius": 4})])
        )
    structured = chat_anthropic(gw).with_structured_output(Weather, method=method)  # type: ignore[attr-defined]
    assert structured.invoke("Oslo weather") == Weather(city="Oslo", celsius=4)
    if method == "json_schema":
        assert gw.claude.last_request.body["output_config"]["format"]["type"] == "json_schema"


def test_chat_anthropic_structured_output_on_an_openai_backend(gw: Rig) -> None:
    """ChatAnthropic pointed at a name an OpenAI-shaped backend serves: output_config becomes
    response_format there."""
    gw.primary.script(Reply(content=json.dumps({"city": "Oslo", "celsius": 4})))
    llm = chat_anthropic(gw, model="gpt-4o-mini")
    structured = llm.with_structured_output(Weather, method="json_schema")  # type: ignore[attr-defined]
    assert structured.invoke("Oslo weather") == Weather(city="Oslo", celsius=4)
    assert gw.primary.last_request.body["response_format"]["type"] == "json_schema"
