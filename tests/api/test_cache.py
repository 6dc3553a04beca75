"""The response cache end to end: official SDKs -> real gateway on loopback -> stand-in upstreams.

``primary``/``secondary`` are OpenAI-compatible stand-ins and ``claude`` an Anthropic stand-in
(tests/standins/), not the providers; they count what they are sent, which is how these tests
know whether an answer came from the cache. The gateway runs with an in-memory exact cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from anthropic.types import MessageParam

from hybridgate.app import create_app
from hybridgate.config import GatewayConfig
from tests.api.conftest import ENV, Rig, rig_config
from tests.servers import serve_in_thread
from tests.standins.anthropic_upstream import Reply as ClaudeReply
from tests.standins.anthropic_upstream import run_anthropic_standin
from tests.standins.openai_upstream import run_openai_standin
from tests.standins.openai_wire import Fail, Reply

QUESTION: list[MessageParam] = [{"role": "user", "content": "What is the capital of France?"}]


def cached_config(base: GatewayConfig, **cache: Any) -> GatewayConfig:
    data = base.model_dump(by_alias=True, exclude_none=True)
    data["cache"] = {"store": "memory", **cache}
    return GatewayConfig.model_validate(data)


@pytest.fixture(scope="module")
def crig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    ledger = tmp_path_factory.mktemp("cache-ledger") / "gw.db"
    with (
        run_openai_standin(api_key="sk-primary") as primary,
        run_openai_standin(api_key="sk-secondary", models=("backup-model",)) as secondary,
        run_anthropic_standin(api_key="sk-ant-test") as claude,
    ):
        config = cached_config(rig_config(primary.base_url, secondary.base_url, claude.base_url, ledger))
        app = create_app(config, env=ENV)
        with serve_in_thread(app) as url:
            yield Rig(url, app.state.gateway, primary, secondary, claude)


@pytest.fixture
def rig(crig: Rig) -> Rig:
    crig.reset()
    return crig


def client(rig: Rig, key: str = "tenant-a") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{rig.url}/v1", api_key=key, max_retries=0)


def ask(oai: openai.OpenAI, content: str, **kw: Any) -> tuple[str, str | None]:
    """(answer text, x-hybridgate-cache header)."""
    raw = oai.chat.completions.with_raw_response.create(
        model="primary", messages=[{"role": "user", "content": content}], **kw
    )
    return raw.parse().choices[0].message.content or "", raw.headers.get("x-hybridgate-cache")


def test_repeated_deterministic_request_is_served_from_cache_and_recorded(rig: Rig) -> None:
    with client(rig) as oai:
        first = ask(oai, "capital of France, temperature 0", temperature=0)
        second = ask(oai, "capital of France, temperature 0", temperature=0)
    assert first[1] == "miss" and second[1] == "hit"
    assert second[0] == first[0] and first[0]
    assert len(rig.primary.requests) == 1  # the stand-in upstream saw only the first
    rows = rig.ledger_rows()[-2:]
    assert [r["cache"] for r in rows] == ["miss", "hit"]
    assert rows[0]["cost_usd"] > 0 and rows[1]["cost_usd"] == 0
    assert rows[1]["saved_usd"] == pytest.approx(rows[0]["cost_usd"])
    assert rows[1]["prompt_tokens"] == 0 and rows[1]["backend"] == "primary"


def test_non_deterministic_request_is_not_cached(rig: Rig) -> None:
    with client(rig) as oai:
        answers = [ask(oai, "write a poem", temperature=0.8) for _ in range(2)]
        answers.append(ask(oai, "write a poem"))  # default temperature is 1
    assert [header for _, header in answers] == ["bypass"] * 3
    assert len(rig.primary.requests) == 3
    assert all(r["cache"] is None for r in rig.ledger_rows()[-3:])


def test_a_seed_makes_a_request_cacheable_and_changes_its_key(rig: Rig) -> None:
    with client(rig) as oai:
        headers = [ask(oai, "seeded", temperature=0.7, seed=s)[1] for s in (1, 1, 2)]
    assert headers == ["miss", "hit", "miss"]
    assert len(rig.primary.requests) == 2


def test_streamed_answer_is_cached_and_replayed_as_a_stream(rig: Rig) -> None:
    def stream_once(oai: openai.OpenAI) -> tuple[str, list[Any], str | None]:
        raw = oai.chat.completions.with_raw_response.create(
            model="primary",
            messages=[{"role": "user", "content": "stream me, please"}],
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(raw.parse())
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return text, chunks, raw.headers.get("x-hybridgate-cache")

    with client(rig) as oai:
        live_text, live_chunks, live_header = stream_once(oai)
        replay_text, replay_chunks, replay_header = stream_once(oai)
        as_json = ask(oai, "stream me, please", temperature=0)
    assert (live_header, replay_header, as_json[1]) == ("miss", "hit", "hit")
    assert replay_text == live_text == as_json[0] and live_text
    finishes = [c.choices[0].finish_reason for c in replay_chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert replay_chunks[-1].usage is not None and replay_chunks[-1].usage == live_chunks[-1].usage
    assert len(rig.primary.requests) == 1


def test_tenants_never_share_entries(rig: Rig) -> None:
    with client(rig, "tenant-a") as a, client(rig, "tenant-b") as b:
        assert ask(a, "shared question", temperature=0)[1] == "miss"
        assert ask(b, "shared question", temperature=0)[1] == "miss"
        assert ask(a, "shared question", temperature=0)[1] == "hit"
        assert ask(b, "shared question", temperature=0)[1] == "hit"
    assert len(rig.primary.requests) == 2


def test_no_store_neither_reads_nor_writes_and_no_cache_refreshes(rig: Rig) -> None:
    with client(rig) as oai:
        no_store = {"extra_headers": {"Cache-Control": "no-store"}}
        assert ask(oai, "directive", temperature=0, **no_store)[1] == "bypass"
        assert ask(oai, "directive", temperature=0)[1] == "miss"  # no-store left nothing behind
        assert ask(oai, "directive", temperature=0, **no_store)[1] == "bypass"  # nor read it
        refresh = {"extra_headers": {"x-hybridgate-cache": "refresh"}}
        assert ask(oai, "directive", temperature=0, **refresh)[1] == "miss"
        force = {"extra_headers": {"x-hybridgate-cache": "force"}}
        assert [ask(oai, "hot", temperature=1.0, **force)[1] for _ in range(2)] == ["miss", "hit"]
    assert len(rig.primary.requests) == 5


def test_anthropic_callers_get_hits_in_their_own_wire_format(rig: Rig) -> None:
    before = len(rig.claude.requests)
    with anthropic.Anthropic(base_url=rig.url, api_key="tenant-c", max_retries=0) as claude:
        heads = []
        for _ in range(2):
            raw = claude.messages.with_raw_response.create(
                # this SDK version has no `temperature` argument any more; the wire field still exists
                model="claude",
                max_tokens=50,
                messages=QUESTION,
                extra_body={"temperature": 0},
            )
            message = raw.parse()
            heads.append((raw.headers.get("x-hybridgate-cache"), message.content[0].type))
    assert heads == [("miss", "text"), ("hit", "text")]
    assert len(rig.claude.requests) - before == 1


def test_cache_metrics_count_hits_by_route(rig: Rig) -> None:
    with client(rig) as oai:
        for _ in range(2):
            ask(oai, "metrics question", temperature=0)
    text = httpx.get(f"{rig.url}/metrics").text
    assert 'hybridgate_cache_total{result="hit",route="primary"}' in text
    assert "hybridgate_cache_saved_usd_total" in text


def test_unreachable_cache_store_is_a_miss_and_health_says_degraded(tmp_path: Path) -> None:
    with run_openai_standin(api_key="sk-primary") as up:
        base = rig_config(up.base_url, up.base_url, "http://127.0.0.1:9", tmp_path / "gw.db")
        data = base.model_dump(by_alias=True, exclude_none=True)
        data["redis"] = {"url": "redis://127.0.0.1:9/0", "timeout_s": 0.2}  # nothing listens on 9
        config = cached_config(GatewayConfig.model_validate(data), store="redis")
        with serve_in_thread(create_app(config, env=ENV)) as url:
            with openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) as oai:
                answers = [ask(oai, "still served?", temperature=0) for _ in range(2)]
            health = httpx.get(f"{url}/healthz").json()
    assert [header for _, header in answers] == ["miss", "miss"]
    assert all(text for text, _ in answers)
    assert len(up.requests) == 2
    assert health["status"] == "degraded" and "cache" in health["degraded"]


def test_an_answer_that_failed_its_checks_is_not_cached(rig: Rig) -> None:
    rig.primary.script(Reply(content="this is not json"), Reply(content='{"ok": true}'))
    with client(rig) as oai:
        wanted = {"response_format": {"type": "json_object"}, "temperature": 0}
        first = ask(oai, "answer in JSON", **wanted)
        second = ask(oai, "answer in JSON", **wanted)
    assert (first, second) == (("this is not json", "miss"), ('{"ok": true}', "miss"))
    assert rig.ledger_rows()[-2]["attempts"] == ["primary:check_failed:json_object"]


def test_a_fallback_answer_after_an_upstream_error_is_not_cached(rig: Rig) -> None:
    rig.primary.script(Fail(status=500, type="server_error"))
    with client(rig) as oai:
        for _ in range(2):
            raw = oai.chat.completions.with_raw_response.create(
                model="auto", messages=[{"role": "user", "content": "fallback?"}], temperature=0
            )
            assert raw.headers["x-hybridgate-cache"] == "miss"
    rows = rig.ledger_rows()[-2:]
    assert [r["backend"] for r in rows] == ["secondary", "primary"]  # the recovered tier answers again


def stream_twice(rig: Rig, **kwargs: Any) -> list[tuple[Any, str | None]]:
    """The same streamed Messages request twice (cached although sampled: ``force``):
    (final message, x-hybridgate-cache) each."""
    answers = []
    force = {"x-hybridgate-cache": "force"}
    with anthropic.Anthropic(base_url=rig.url, api_key="tenant-a", max_retries=0) as claude:
        for _ in range(2):
            with claude.messages.stream(messages=QUESTION, extra_headers=force, **kwargs) as stream:
                answers.append(
                    (stream.get_final_message(), stream.response.headers.get("x-hybridgate-cache"))
                )
    return answers


def test_a_streamed_answer_replays_its_stop_sequence_and_thinking_signature(rig: Rig) -> None:
    """The exact cache folds a stream into one answer; the replay keeps the matched stop
    sequence and each thinking block with its signature (the stand-in signs with c2lnbmVk)."""
    rig.claude.script(ClaudeReply(text="Paris. END and more", thinking="France: Paris."))
    asked = len(rig.claude.requests)
    (first, miss), (second, hit) = stream_twice(
        rig,
        model="claude",
        max_tokens=256,
        stop_sequences=["END"],
        thinking={"type": "enabled", "budget_tokens": 1024},
    )
    assert (miss, hit) == ("miss", "hit") and len(rig.claude.requests) == asked + 1
    assert (first.stop_reason, first.stop_sequence) == ("stop_sequence", "END")
    assert first.content[0].type == "thinking" and first.content[0].signature == "c2lnbmVk"
    assert second.model_dump(exclude={"id"}) == first.model_dump(exclude={"id"})


def test_a_streamed_answer_replays_the_stop_sequence_a_vllm_style_backend_named(rig: Rig) -> None:
    rig.secondary.script(Reply(content="one two", stop_reason="END"))
    (first, miss), (second, hit) = stream_twice(
        rig, model="local", max_tokens=50, stop_sequences=["STOP", "END"]
    )
    assert (miss, hit) == ("miss", "hit") and len(rig.secondary.requests) == 1
    assert (first.stop_reason, first.stop_sequence) == ("stop_sequence", "END")
    assert (second.stop_reason, second.stop_sequence) == ("stop_sequence", "END")
    assert second.model_dump(exclude={"id"}) == first.model_dump(exclude={"id"})
