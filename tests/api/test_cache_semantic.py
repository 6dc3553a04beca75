"""The semantic cache end to end: reworded repeats hit, near misses do not.

The gateway is the real app with the real matcher (WordLlama embeddings read from the installed
wheel, plus the guards); ``up`` is an OpenAI-compatible stand-in upstream on loopback (not
OpenAI) that counts what it is sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from hybridgate.app import create_app
from hybridgate.config import GatewayConfig
from tests.servers import serve_in_thread
from tests.standins.openai_upstream import OpenAIStandIn, run_openai_standin
from tests.standins.openai_wire import Reply, ToolCall


def semantic_config(upstream: str, tmp: Path, store: str) -> GatewayConfig:
    backend = {"type": "openai_compat", "base_url": upstream, "model": "m", "timeout_s": 5}
    return GatewayConfig.model_validate(
        {
            "ledger": {"path": str(tmp / "gw.db"), "flush_interval_s": 0.05},
            "backends": {"up": backend},
            "routes": {"auto": {"try": ["up"]}, "exact-only": {"try": ["up"]}},
            # 0.9: an operator's choice of more recall than the shipped default (0.98); these tests
            # are about how semantic hits travel, not where the threshold sits.
            "cache": {
                "store": store,
                "path": str(tmp / "cache.db"),
                "semantic_routes": ["auto"],
                "semantic_threshold": 0.9,
            },
        }
    )


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, OpenAIStandIn]]:
    with run_openai_standin() as up:
        app = create_app(semantic_config(up.base_url, tmp_path_factory.mktemp("sem"), "memory"), env={})
        with serve_in_thread(app) as url:
            yield url, up


def ask(
    url: str, question: str, model: str = "auto", system: str | None = None, key: str = "k"
) -> str | None:
    messages: list[Any] = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": question})
    with openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0) as oai:
        raw = oai.chat.completions.with_raw_response.create(model=model, messages=messages, temperature=0)
    assert raw.parse().choices[0].message.content
    return raw.headers.get("x-hybridgate-cache")


def test_a_reworded_question_is_a_semantic_hit(gateway: tuple[str, OpenAIStandIn]) -> None:
    url, up = gateway
    before = len(up.requests)
    assert ask(url, "How do I reset my password?") == "miss"
    assert ask(url, "How can I reset my password?") == "semantic-hit"
    assert len(up.requests) - before == 1


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("How do I learn Python in 30 days?", "How do I learn Python in 60 days?"),  # a number
        ("Why is Python popular?", "Why is Python not popular?"),  # a negation
        ("What is the capital of France?", "What is the capital of Germany?"),  # an entity
    ],
)
def test_near_misses_are_not_served(gateway: tuple[str, OpenAIStandIn], first: str, second: str) -> None:
    url, _ = gateway
    assert ask(url, first) == "miss"
    assert ask(url, second) == "miss"


def test_semantic_hits_stay_within_scope_tenant_and_route(gateway: tuple[str, OpenAIStandIn]) -> None:
    url, _ = gateway
    assert ask(url, "How do I bake sourdough bread?", system="Answer as a baker.") == "miss"
    assert ask(url, "How can I bake sourdough bread?", system="Answer as a lawyer.") == "miss"
    assert ask(url, "How can I bake sourdough bread?", system="Answer as a baker.", key="other") == "miss"
    assert ask(url, "How can I bake sourdough bread?", system="Answer as a baker.") == "semantic-hit"
    assert ask(url, "How do I brew green tea?", model="exact-only") == "miss"
    assert ask(url, "How can I brew green tea?", model="exact-only") == "miss"  # route not semantic


def test_a_second_gateway_on_the_same_sqlite_cache_learns_the_first_ones_questions(tmp_path: Path) -> None:
    with run_openai_standin() as up:
        config = semantic_config(up.base_url, tmp_path, "sqlite")
        with serve_in_thread(create_app(config, env={})) as first:
            assert ask(first, "How do I renew my passport?") == "miss"
        with serve_in_thread(create_app(config, env={})) as second:
            assert ask(second, "How can I renew my passport?") == "semantic-hit"
        assert len(up.requests) == 1


def test_tool_calls_are_replayed_only_for_the_exact_request(gateway: tuple[str, OpenAIStandIn]) -> None:
    url, up = gateway
    call = ToolCall(name="transfer", arguments='{"amount": 500, "from": "checking", "to": "savings"}')
    up.script(Reply(tool_calls=[call]), Reply(tool_calls=[call]))
    tools: Any = [{"type": "function", "function": {"name": "transfer", "parameters": {"type": "object"}}}]
    with openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) as oai:
        heads = []
        for text in ("Move $500 from checking to savings", "Move $500 from savings to checking"):
            raw = oai.chat.completions.with_raw_response.create(
                model="auto", messages=[{"role": "user", "content": text}], tools=tools, temperature=0
            )
            heads.append(raw.headers.get("x-hybridgate-cache"))
    assert heads == ["miss", "miss"]  # a bag-of-words match must not replay a money transfer


def test_a_route_keeps_its_own_semantic_threshold(tmp_path: Path) -> None:
    """``semantic_thresholds``: one route's operating point (0.999, near exact) beside the
    file-wide 0.9: the same rewording hits on one route and misses on the other."""
    with run_openai_standin() as up:
        config = semantic_config(up.base_url, tmp_path, "memory")
        assert config.cache is not None
        config.cache.semantic_routes = ["auto", "exact-only"]
        config.cache.semantic_thresholds = {"exact-only": 0.999}
        with serve_in_thread(create_app(config, env={})) as url:
            for model in ("auto", "exact-only"):
                assert ask(url, "How do I reset my password?", model=model) == "miss"
            assert ask(url, "How can I reset my password?", model="auto") == "semantic-hit"
            assert ask(url, "How can I reset my password?", model="exact-only") == "miss"


def test_a_semantic_threshold_for_a_route_that_is_not_semantic_is_refused(tmp_path: Path) -> None:
    raw = semantic_config("http://127.0.0.1:9/v1", tmp_path, "memory").model_dump(by_alias=True)
    raw["cache"]["semantic_thresholds"] = {"exact-only": 0.95}
    with pytest.raises(ValueError, match="route 'exact-only' is not in semantic_routes"):
        GatewayConfig.model_validate(raw)
    raw["cache"]["semantic_thresholds"] = {"auto": 1.5}
    with pytest.raises(ValueError, match="less than or equal to 1"):
        GatewayConfig.model_validate(raw)
