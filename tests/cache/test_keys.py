"""Cache keys: what changes the answer changes the key; what does not, does not."""

from __future__ import annotations

from typing import Any

import pytest

from hybridgate.cache.keys import cache_keys, is_deterministic, parse_directive, tenant_of
from hybridgate.types import ChatRequest, Decision, RequestContext

DECISION = Decision(route="auto", backends=("local",), rule="default")


def request(**kw: Any) -> ChatRequest:
    body: dict[str, Any] = {
        "model": "auto",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is 2+2?"},
        ],
        "temperature": 0,
    }
    body.update(kw)
    return ChatRequest.model_validate(body)


def keys(req: ChatRequest, ctx: RequestContext | None = None, decision: Decision = DECISION) -> Any:
    return cache_keys(req, decision, ctx or RequestContext(request_id="r", api_key_id="key_a"))


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.5},
        {"max_tokens": 10},
        {"seed": 3},
        {"stop": ["\n"]},
        {"response_format": {"type": "json_object"}},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
        {"messages": [{"role": "user", "content": "What is 2+3?"}]},
        {"presence_penalty": 0.5},  # not modelled by ChatRequest, passed upstream as is
        {"reasoning_effort": "high"},
    ],
)
def test_anything_that_changes_the_answer_changes_the_exact_key(change: dict[str, Any]) -> None:
    assert keys(request(**change)).exact != keys(request()).exact


def test_stream_flags_and_model_alias_do_not_change_the_key() -> None:
    streamed = request(stream=True, stream_options={"include_usage": True}, model="whatever")
    assert keys(streamed).exact == keys(request()).exact


def test_route_tenant_and_pinned_model_are_part_of_the_key() -> None:
    other_route = Decision(route="frontier", backends=("openai",), rule="r")
    pinned = Decision(route="auto", backends=("local",), rule="r", model_override="local/x")
    other_key = RequestContext(request_id="r", api_key_id="key_b")
    other_env = RequestContext(request_id="r", api_key_id="key_a", environment="prod")
    base = keys(request()).exact
    assert (
        len({base, keys(request(), decision=other_route).exact, keys(request(), decision=pinned).exact}) == 3
    )
    assert keys(request(), other_key).exact != base
    assert keys(request(), other_env).exact != base


def test_scope_ignores_only_the_last_user_turn() -> None:
    a, b = (
        keys(request()),
        keys(
            request(
                messages=[
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Tell me 2+2"},
                ]
            )
        ),
    )
    assert a.scope == b.scope and a.exact != b.exact
    assert (a.query, b.query) == ("What is 2+2?", "Tell me 2+2")
    other_system = request(
        messages=[{"role": "system", "content": "Be verbose."}, {"role": "user", "content": "What is 2+2?"}]
    )
    assert keys(other_system).scope != a.scope


def test_tenant_is_the_key_within_its_environment() -> None:
    assert tenant_of(RequestContext(request_id="r", environment="prod", api_key_id="key_1")) == "prod/key_1"
    assert tenant_of(RequestContext(request_id="r")) == "default/anonymous"


def test_deterministic_means_greedy_or_seeded() -> None:
    assert is_deterministic(request())
    assert is_deterministic(request(temperature=0.9, seed=1))
    assert not is_deterministic(request(temperature=None))
    assert not is_deterministic(request(temperature=0.2))


@pytest.mark.parametrize(
    ("cache_control", "header", "expected"),
    [
        (None, None, "default"),
        ("no-store", None, "no-store"),
        ("max-age=0, No-Cache", None, "no-cache"),
        (None, "off", "no-store"),
        (None, "refresh", "no-cache"),
        (None, "force", "force"),
        ("no-cache", "force", "no-cache"),  # the stricter wish wins
        ("no-store", "refresh", "no-store"),
    ],
)
def test_directives(cache_control: str | None, header: str | None, expected: str) -> None:
    assert parse_directive(cache_control, header) == expected


def test_the_scope_keeps_the_last_turns_images() -> None:
    def about(image: str, text: str) -> ChatRequest:
        parts = [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": image}}]
        return request(messages=[{"role": "user", "content": parts}])

    cat, dog = (
        keys(about("data:cat.png", "What animal is this?")),
        keys(about("data:dog.png", "What animal is this?")),
    )
    assert cat.scope != dog.scope
    reworded = keys(about("data:cat.png", "Which animal is in the picture?"))
    assert reworded.scope == cat.scope and reworded.query == "Which animal is in the picture?"
