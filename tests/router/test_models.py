"""Model-name resolution (router/models.py through RuleRouter): pure, over plain config."""

from __future__ import annotations

import pytest

from hybridgate.config import GatewayConfig
from hybridgate.router import RuleRouter
from hybridgate.router.models import family_of
from hybridgate.types import ChatRequest, RequestContext

CONFIG = GatewayConfig.model_validate(
    {
        "backends": {
            "local": {"type": "embedded"},
            "gpt": {"type": "openai_compat", "base_url": "https://api.openai.com/v1", "model": "gpt-4o-mini"},
            "vllm": {"type": "openai_compat", "base_url": "http://127.0.0.1:1/v1", "model": "qwen2.5-7b"},
            "claude": {"type": "anthropic", "model": "claude-haiku-4-5"},
        },
        "routes": {
            "auto": {"try": ["local", "gpt"]},
            "smart": {"try": ["claude", "gpt"]},
            "gpt-4o": {"try": ["gpt"]},  # a route named like a model: the route wins
        },
        "models": {"writer": "smart", "team-*": "auto"},
    }
)


def decide(model: str) -> tuple[str, tuple[str, ...], str, str | None]:
    request = ChatRequest.model_validate({"model": model, "messages": [{"role": "user", "content": "hi"}]})
    decision = RuleRouter(CONFIG).decide(request, RequestContext(request_id="r"))
    return decision.route, decision.backends, decision.rule, decision.model_override


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o", ("gpt-4o", ("gpt",), "explicit", None)),  # 1. route name
        ("vllm/other", ("vllm", ("vllm",), "concrete", "other")),  # 2. backend/model
        ("writer", ("smart", ("claude", "gpt"), "alias:writer", None)),  # 3. alias
        ("gpt-4o-mini", ("auto", ("gpt", "local"), "model", None)),  # 4. upstream model + route fallbacks
        ("qwen2.5-7b", ("vllm", ("vllm",), "model", None)),  # ... in no route: that backend alone
        ("claude-sonnet-4-5", ("claude", ("claude",), "family:anthropic", "claude-sonnet-4-5")),  # 5.
        ("o3-mini", ("gpt", ("gpt",), "family:openai", "o3-mini")),
        ("gemini-2.5-pro", ("auto", ("local", "gpt"), "default", None)),  # 6. no google backend: auto
    ],
)
def test_resolution_order(model: str, expected: tuple[str, tuple[str, ...], str, str | None]) -> None:
    assert decide(model) == expected


def test_an_alias_to_the_default_route_still_runs_the_rules_and_records_why() -> None:
    request = ChatRequest.model_validate({"model": "team-a", "messages": [{"role": "user", "content": "hi"}]})
    decision = RuleRouter(CONFIG).decide(request, RequestContext(request_id="r"))
    assert (decision.route, decision.rule) == ("auto", "default")
    assert "alias 'team-*'" in decision.reasons[0]


def test_families() -> None:
    assert [family_of(m) for m in ("gpt-4.1", "o1", "o4-mini", "chatgpt-4o-latest", "claude-opus-4-1")] == [
        "openai",
        "openai",
        "openai",
        "openai",
        "anthropic",
    ]
    assert family_of("gemini-2.0-flash") == "google"
    assert family_of("ollama-thing") is None and family_of("llama3") is None


def test_an_alias_to_an_unknown_route_is_a_config_error() -> None:
    with pytest.raises(ValueError, match=r"models\.'x': unknown route 'nope'"):
        GatewayConfig.model_validate({**CONFIG.model_dump(by_alias=True), "models": {"x": "nope"}})
