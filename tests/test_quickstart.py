"""The README's promise, end to end: ``hybridgate serve`` with no config and no keys serves the
embedded SmolLM2 model to the official ``openai`` and ``anthropic`` SDKs, and ``hybridgate usage
--json`` shows what it cost. Nothing here is a stand-in: a real gateway process, a real model.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

HYBRIDGATE = [sys.executable, "-m", "hybridgate"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    workdir = tmp_path_factory.mktemp("quickstart")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}
    process = subprocess.Popen(
        [*HYBRIDGATE, "serve", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read().decode() if process.stdout else ""
                    raise RuntimeError(f"hybridgate serve did not come up:\n{output}") from None
                time.sleep(0.2)
        yield url, workdir
    finally:
        process.terminate()  # SIGTERM: the ledger drains before exit
        process.wait(timeout=30)
        if process.stdout:
            process.stdout.close()


def test_openai_sdk_gets_smollm2_and_usage_shows_it(served: tuple[str, Path]) -> None:
    url, workdir = served
    with openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client:
        messages: list[openai.types.chat.ChatCompletionMessageParam] = [
            {"role": "user", "content": "Name a colour."}
        ]
        reply = client.chat.completions.create(model="auto", messages=messages, max_tokens=12, temperature=0)
        assert reply.model == "SmolLM2-135M-Instruct"
        assert reply.choices[0].message.content
        assert reply.usage is not None and reply.usage.completion_tokens > 0
        chunks = list(
            client.chat.completions.create(
                model="auto",
                messages=messages,
                max_tokens=12,
                temperature=0,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert streamed == reply.choices[0].message.content  # greedy: same text either way
    rows = usage_json(workdir, "route")
    auto = next(r for r in rows if r["route"] == "auto")
    assert auto["requests"] >= 2 and auto["completion_tokens"] > 0
    assert auto["latency_p50_ms"] > 0 and auto["cost_usd"] == 0  # the local tier is free by default


def test_anthropic_sdk_against_the_embedded_default(served: tuple[str, Path]) -> None:
    url, _ = served
    with anthropic.Anthropic(base_url=url, api_key="x", max_retries=0) as client:
        message = client.messages.create(
            model="auto", max_tokens=10, messages=[{"role": "user", "content": "Say hi."}]
        )
        assert message.content[0].type == "text" and message.content[0].text
        assert message.stop_reason in ("end_turn", "max_tokens") and message.usage.output_tokens > 0
        with client.messages.stream(
            model="local", max_tokens=10, messages=[{"role": "user", "content": "Say hi."}]
        ) as stream:
            text = "".join(stream.text_stream)
        assert text and stream.get_final_message().usage.output_tokens > 0


def text_of(message: anthropic.types.Message) -> str:
    return "".join(b.text for b in message.content if isinstance(b, anthropic.types.TextBlock))


def test_anthropic_stop_sequence_is_named_on_the_embedded_default(served: tuple[str, Path]) -> None:
    """stop_reason / stop_sequence through the Messages edge on the embedded tier, plain and
    streamed: greedy decoding repeats the free answer, so a piece of it must stop the second."""
    url, _ = served
    ask: Any = {
        "model": "local",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "Count: one, two, three,"}],
        "extra_body": {"temperature": 0},
    }
    with anthropic.Anthropic(base_url=url, api_key="x", max_retries=0) as client:
        free = text_of(client.messages.create(**ask))
        middle = len(free) // 2
        stop = next(free[i : i + 3] for i in range(middle, len(free) - 2) if free[i : i + 3].strip())
        stops = ["@@never@@", stop]
        message = client.messages.create(**ask, stop_sequences=stops)
        with client.messages.stream(**ask, stop_sequences=stops) as stream:
            streamed = stream.get_final_message()
    for answer in (message, streamed):
        assert (answer.stop_reason, answer.stop_sequence) == ("stop_sequence", stop)
        assert text_of(answer) == free[: free.index(stop)]


async def test_async_anthropic_sdk(served: tuple[str, Path]) -> None:
    url, _ = served
    async with anthropic.AsyncAnthropic(base_url=url, api_key="x", max_retries=0) as client:
        message = await client.messages.create(
            model="auto", max_tokens=8, messages=[{"role": "user", "content": "One word: yes or no?"}]
        )
        assert message.content and message.usage.input_tokens > 0


def test_json_schema_on_the_embedded_model_is_valid_by_construction(served: tuple[str, Path]) -> None:
    url, _ = served
    schema: dict[str, object] = {
        "type": "object",
        "properties": {"colour": {"type": "string"}},
        "required": ["colour"],
    }
    with openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client:
        reply = client.chat.completions.create(
            model="local",
            max_tokens=40,
            messages=[{"role": "user", "content": "A colour as JSON."}],
            response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}},
        )
    value = json.loads(reply.choices[0].message.content or "")
    assert isinstance(value["colour"], str)


def usage_json(workdir: Path, by: str) -> list[dict[str, Any]]:
    # the gateway flushes its ledger every 0.5 s by default
    deadline = time.monotonic() + 10
    while True:
        result = subprocess.run(
            [*HYBRIDGATE, "usage", "--by", by, "--json"], cwd=workdir, capture_output=True, text=True
        )
        rows: list[dict[str, Any]] = json.loads(result.stdout) if result.returncode == 0 else []
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.3)


def test_anthropic_tool_use_round_trip_on_the_embedded_model(served: tuple[str, Path]) -> None:
    url, _ = served
    weather: anthropic.types.ToolParam = {
        "name": "get_weather",
        "description": "Current weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
    question: anthropic.types.MessageParam = {"role": "user", "content": "Weather in Paris?"}
    with anthropic.Anthropic(base_url=url, api_key="x", max_retries=0) as client:
        message = client.messages.create(
            model="local",
            max_tokens=60,
            messages=[question],
            tools=[weather],
            tool_choice={"type": "tool", "name": "get_weather"},  # forced: grammar-constrained call
        )
        call = message.content[-1]
        assert message.stop_reason == "tool_use"
        assert call.type == "tool_use" and call.name == "get_weather" and isinstance(call.input["city"], str)
        follow_up = client.messages.create(
            model="local",
            max_tokens=16,
            tools=[weather],
            messages=[
                question,
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": call.id, "name": call.name, "input": call.input}],
                },
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18 C and sunny"}],
                },
            ],
        )
        assert follow_up.content and follow_up.usage.input_tokens > message.usage.input_tokens


def test_responses_api_against_the_embedded_default(served: tuple[str, Path]) -> None:
    """The Responses API on SmolLM2: create, stream, a forced tool call answered by
    function_call_output through previous_response_id, retrieve (the default keeps answers)."""
    url, _ = served
    weather: Any = {
        "type": "function",
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "strict": False,
    }
    with openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client:
        first = client.responses.create(
            model="auto", input="Name a colour.", max_output_tokens=12, temperature=0
        )
        assert first.model == "SmolLM2-135M-Instruct" and first.output_text
        assert first.usage is not None and first.usage.output_tokens > 0
        with client.responses.stream(
            model="auto", input="Name a colour.", max_output_tokens=12, temperature=0
        ) as stream:
            events = list(stream)
        streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        last = events[-1]
        # 12 tokens rarely finish a sentence: then the stream ends in response.incomplete
        assert (
            last.type in ("response.completed", "response.incomplete")
            and last.response.status == first.status
        )
        assert streamed == last.response.output_text == first.output_text  # greedy: same text either way
        called = client.responses.create(
            model="local",
            input="Weather in Paris?",
            tools=[weather],
            tool_choice={"type": "function", "name": "get_weather"},
            max_output_tokens=60,
        )
        call = next(item for item in called.output if item.type == "function_call")
        assert call.name == "get_weather" and isinstance(json.loads(call.arguments)["city"], str)
        answered = client.responses.create(
            model="local",
            previous_response_id=called.id,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "18 C and sunny"}],
            tools=[weather],
            max_output_tokens=16,
        )
        assert answered.previous_response_id == called.id and answered.usage is not None
        assert answered.usage.input_tokens > called.usage.input_tokens  # type: ignore[union-attr]
        assert client.responses.retrieve(answered.id).output_text == answered.output_text
