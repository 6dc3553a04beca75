"""Rule routing: pure decisions over plain requests, no servers."""

from __future__ import annotations

import pytest

from hybridgate.config import GatewayConfig
from hybridgate.errors import ModelNotFoundError
from hybridgate.router.rules import RuleRouter, estimate_prompt_tokens
from hybridgate.types import ChatRequest, RequestContext

CONFIG = GatewayConfig.model_validate(
    {
        "backends": {
            "local": {"type": "embedded"},
            "cloud": {"type": "openai_compat", "base_url": "http://127.0.0.1:1/v1", "model": "gpt-x"},
        },
        "routes": {
            "auto": {"try": ["local", "cloud"]},
            "local": {"try": ["local"]},
            "big": {"try": ["cloud"]},
        },
        "rules": [
            {"name": "support", "feature": "support", "route": "local"},
            {"name": "vision", "has_images": True, "route": "big"},
            {"name": "long", "min_prompt_tokens": 100, "route": "big"},
            {"name": "code", "regex": "(?i)python", "route": "big"},
            {"name": "tools", "has_tools": True, "route": "big"},
        ],
    }
)


def chat(text: str = "hi", model: str = "auto", **extra: object) -> ChatRequest:
    return ChatRequest.model_validate(
        {"model": model, "messages": [{"role": "user", "content": text}], **extra}
    )


def ctx(**fields: str) -> RequestContext:
    return RequestContext(request_id="r1", **fields)  # type: ignore[arg-type]


def test_no_rule_matches_goes_to_default_route() -> None:
    decision = RuleRouter(CONFIG).decide(chat("hello"), ctx())
    assert (decision.route, decision.rule, decision.backends) == ("auto", "default", ("local", "cloud"))
    assert "no rule matched" in decision.reasons[0]


def test_feature_rule_wins_in_file_order_over_later_rules() -> None:
    decision = RuleRouter(CONFIG).decide(chat("python " * 200), ctx(feature="support"))
    assert decision.rule == "rule:support"
    assert decision.reasons == ("feature=support",)


def test_long_prompt_rule_names_the_estimate() -> None:
    decision = RuleRouter(CONFIG).decide(chat("word " * 200), ctx())
    assert decision.rule == "rule:long"
    assert decision.reasons[0].startswith("prompt_tokens~")


def test_regex_looks_at_the_last_user_message_only() -> None:
    request = ChatRequest.model_validate(
        {
            "model": "auto",
            "messages": [
                {"role": "system", "content": "python expert"},
                {"role": "user", "content": "say hi"},
            ],
        }
    )
    assert RuleRouter(CONFIG).decide(request, ctx()).rule == "default"
    assert RuleRouter(CONFIG).decide(chat("Write Python"), ctx()).rule == "rule:code"


def test_images_and_tools_rules() -> None:
    image = chat(model="auto")
    image.messages[0].content = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
    ]
    assert RuleRouter(CONFIG).decide(image, ctx()).rule == "rule:vision"
    tools = chat(tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}])
    assert RuleRouter(CONFIG).decide(tools, ctx()).rule == "rule:tools"


def test_header_override_beats_rules_and_unknown_override_is_404() -> None:
    router = RuleRouter(CONFIG)
    assert router.decide(chat("python"), ctx(route_override="local")).route == "local"
    with pytest.raises(ModelNotFoundError) as err:
        router.decide(chat(), ctx(route_override="nope"))
    assert "configured routes: auto, local, big" in err.value.message


def test_route_name_and_concrete_backend_model() -> None:
    router = RuleRouter(CONFIG)
    assert router.decide(chat(model="big"), ctx()).rule == "explicit"
    concrete = router.decide(chat(model="cloud/gpt-other"), ctx())
    assert (concrete.backends, concrete.model_override) == (("cloud",), "gpt-other")
    assert router.decide(chat(model="cloud"), ctx()).model_override is None


def test_unknown_model_lists_what_exists_under_reject() -> None:
    strict = CONFIG.model_copy(update={"unknown_models": "reject"})
    with pytest.raises(ModelNotFoundError) as err:
        RuleRouter(strict).decide(chat(model="llama-9000"), ctx())
    assert err.value.status_code == 404
    assert "cloud/<model>" in err.value.message


def test_unknown_model_is_served_as_auto_by_default_with_the_reason() -> None:
    decision = RuleRouter(CONFIG).decide(chat(model="llama-9000"), ctx())
    assert decision.route == CONFIG.default_route
    assert 'unknown_models = "auto"' in decision.reasons[0]


def test_estimate_grows_with_text() -> None:
    assert estimate_prompt_tokens(chat("a" * 4000)) > estimate_prompt_tokens(chat("a" * 40)) + 900
