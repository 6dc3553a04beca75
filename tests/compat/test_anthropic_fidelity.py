"""Anthropic Messages fidelity through the gateway, driven by the official ``anthropic`` SDK.

Stand-ins (tests/compat/conftest.py): ``claude`` speaks Anthropic's Messages API (stops at stop
sequences and reports them, returns signed thinking blocks when scripted), ``primary`` speaks
OpenAI's format, ``secondary`` vLLM's dialect of it. Each records what it received.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest
from pydantic import BaseModel

from tests.api.conftest import Rig
from tests.standins.anthropic_upstream import Reply as ClaudeReply
from tests.standins.openai_upstream import Fail, Reply


class City(BaseModel):
    name: str
    population: int


def test_stop_sequence_from_an_anthropic_upstream(gw: Rig, claude: anthropic.Anthropic) -> None:
    gw.claude.script(ClaudeReply(text="one two END three"))
    message = claude.messages.create(
        model="my-app-model",
        max_tokens=50,
        stop_sequences=["END"],
        messages=[{"role": "user", "content": "go"}],
    )
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "END")
    assert message.content[0].type == "text" and message.content[0].text == "one two "


def test_stop_sequence_from_an_anthropic_upstream_streamed(gw: Rig, claude: anthropic.Anthropic) -> None:
    gw.claude.script(ClaudeReply(text="one two END three"))
    with claude.messages.stream(
        model="my-app-model",
        max_tokens=50,
        stop_sequences=["END"],
        messages=[{"role": "user", "content": "go"}],
    ) as stream:
        message = stream.get_final_message()
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "END")


@pytest.mark.parametrize("streamed", [False, True])
def test_stop_sequence_named_by_a_vllm_style_backend(
    gw: Rig, claude: anthropic.Anthropic, streamed: bool
) -> None:
    gw.secondary.script(Reply(content="one two", stop_reason="END"))
    kwargs: dict[str, Any] = {
        "model": "fast",
        "max_tokens": 50,
        "stop_sequences": ["STOP", "END"],
        "messages": [{"role": "user", "content": "go"}],
    }
    if streamed:
        with claude.messages.stream(**kwargs) as stream:
            message = stream.get_final_message()
    else:
        message = claude.messages.create(**kwargs)
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "END")
    assert gw.secondary.last_request.body["stop"] == ["STOP", "END"]


def test_messages_parse_passes_output_config_to_anthropic(gw: Rig, claude: anthropic.Anthropic) -> None:
    gw.claude.script(ClaudeReply(text='{"name": "Lyon", "population": 520000}'))
    parsed = claude.messages.parse(
        model="my-app-model",
        max_tokens=100,
        messages=[{"role": "user", "content": "a city"}],
        output_format=City,
    )
    assert parsed.parsed_output == City(name="Lyon", population=520000)
    sent = gw.claude.last_request.body
    assert sent["output_config"]["format"]["type"] == "json_schema"
    assert "JSON" not in str(
        sent.get("system") or ""
    )  # the upstream's own structured output, no prompt trick


def test_messages_parse_becomes_response_format_for_openai_backends(
    gw: Rig, claude: anthropic.Anthropic
) -> None:
    gw.primary.script(Reply(content='{"name": "Lyon", "population": 520000}'))
    parsed = claude.messages.parse(
        model="gpt-4o-mini",
        max_tokens=100,
        messages=[{"role": "user", "content": "a city"}],
        output_format=City,
    )
    assert parsed.parsed_output == City(name="Lyon", population=520000)
    sent = gw.primary.last_request.body
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["schema"]["required"] == ["name", "population"]
    assert "output_config" not in sent and "anthropic" not in sent


def test_system_role_messages_are_merged_into_the_system_prompt(gw: Rig, claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model="my-app-model",
        max_tokens=50,
        system="You are terse.",
        messages=[
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": "hello"},
        ],
    )
    assert message.content
    sent = gw.claude.last_request.body
    assert "Answer in French." in json.dumps(sent["system"]) and "You are terse." in json.dumps(
        sent["system"]
    )
    assert [turn["role"] for turn in sent["messages"]] == ["user"]


def test_thinking_is_passed_and_signatures_round_trip(gw: Rig, claude: anthropic.Anthropic) -> None:
    gw.claude.script(ClaudeReply(text="Paris.", thinking="The capital of France is Paris."))
    first = claude.messages.create(
        model="my-app-model",
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "Capital of France?"}],
    )
    assert gw.claude.last_request.body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    thinking = first.content[0]
    assert thinking.type == "thinking" and thinking.signature == "c2lnbmVk"
    history: Any = [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": [block.model_dump() for block in first.content]},
        {"role": "user", "content": "And of Italy?"},
    ]
    claude.messages.create(
        model="my-app-model",
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=history,
    )
    resent = gw.claude.last_request.body["messages"][1]["content"][0]
    assert resent == {
        "type": "thinking",
        "thinking": "The capital of France is Paris.",
        "signature": "c2lnbmVk",
    }


def test_thinking_streams_with_its_signature(gw: Rig, claude: anthropic.Anthropic) -> None:
    gw.claude.script(ClaudeReply(text="Paris.", thinking="France: Paris."))
    with claude.messages.stream(
        model="my-app-model",
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "Capital of France?"}],
    ) as stream:
        message = stream.get_final_message()
    assert [block.type for block in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "France: Paris."  # type: ignore[union-attr]
    assert message.content[0].signature == "c2lnbmVk"  # type: ignore[union-attr]


def test_reasoning_content_of_another_backend_comes_back_as_thinking(
    gw: Rig, claude: anthropic.Anthropic
) -> None:
    gw.secondary.script(Reply(content="42", reasoning_content="6 times 7"))
    message = claude.messages.create(
        model="fast", max_tokens=50, messages=[{"role": "user", "content": "6*7?"}]
    )
    assert [block.type for block in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "6 times 7"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("thinking", "effort"),
    [
        ({"type": "enabled", "budget_tokens": 1024}, "low"),
        ({"type": "enabled", "budget_tokens": 4096}, "medium"),
        ({"type": "enabled", "budget_tokens": 8192}, "medium"),
        ({"type": "enabled", "budget_tokens": 24576}, "high"),
        ({"type": "disabled"}, None),
        (None, None),
    ],
)
def test_thinking_becomes_reasoning_effort_for_an_openai_shaped_backend(
    gw: Rig, claude: anthropic.Anthropic, thinking: Any, effort: str | None
) -> None:
    """``primary`` (OpenAI's format) gets ``reasoning_effort`` from the thinking budget."""
    extra = {} if thinking is None else {"thinking": thinking}
    claude.messages.create(
        model="gpt-4o-mini", max_tokens=2048, messages=[{"role": "user", "content": "hm?"}], **extra
    )
    sent = gw.primary.last_request.body
    assert sent.get("reasoning_effort") == effort
    assert "thinking" not in sent


@pytest.mark.parametrize("streamed", [False, True])
def test_a_model_that_refuses_the_derived_reasoning_effort_gets_the_request_without_it(
    gw: Rig, claude: anthropic.Anthropic, streamed: bool
) -> None:
    """OpenAI's non-reasoning models answer 400 to ``reasoning_effort``; one the gateway derived
    from a thinking budget is a hint, so the request is sent once more without it."""
    refusal = "Unrecognized request argument supplied: reasoning_effort"
    gw.primary.script(
        Fail(status=400, type="invalid_request_error", message=refusal, param="reasoning_effort")
    )
    ask: Any = {
        "model": "gpt-4o-mini",
        "max_tokens": 2048,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": "hm?"}],
    }
    if streamed:
        with claude.messages.stream(**ask) as stream:
            message = stream.get_final_message()
    else:
        message = claude.messages.create(**ask)
    assert message.content[-1].type == "text" and message.content[-1].text
    first, second = (request.body for request in gw.primary.requests[-2:])
    assert first["reasoning_effort"] == "low" and "reasoning_effort" not in second
    assert gw.ledger_rows()[-1]["status"] == 200


def test_a_reasoning_effort_the_caller_chose_is_not_dropped_on_refusal(gw: Rig) -> None:
    gw.primary.script(Fail(status=400, type="invalid_request_error", message="no", param="reasoning_effort"))
    with (
        openai.OpenAI(base_url=f"{gw.url}/v1", api_key="caller-key", max_retries=0) as oai,
        pytest.raises(openai.BadRequestError),
    ):
        oai.chat.completions.create(
            model="gpt-4o-mini", reasoning_effort="high", messages=[{"role": "user", "content": "hm"}]
        )
    assert len([r for r in gw.primary.requests if r.body.get("reasoning_effort") == "high"]) == 1


def test_output_config_effort_becomes_reasoning_effort_and_wins_over_the_budget(
    gw: Rig, claude: anthropic.Anthropic
) -> None:
    claude.messages.create(
        model="gpt-4o-mini",
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        output_config={"effort": "max"},
        messages=[{"role": "user", "content": "hm?"}],
    )
    assert gw.primary.last_request.body["reasoning_effort"] == "max"
    assert "output_config" not in gw.primary.last_request.body


def test_anthropic_only_fields_and_beta_header_reach_anthropic(gw: Rig, claude: anthropic.Anthropic) -> None:
    extra = {
        "top_k": 5,
        "service_tier": "auto",
        "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
        "cache_control": {"type": "ephemeral"},
    }
    claude.messages.create(
        model="my-app-model",
        max_tokens=50,
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}],
            }
        ],
        extra_body=extra,
        extra_headers={"anthropic-beta": "context-management-2025-06-27"},
    )
    sent = gw.claude.last_request
    assert {key: sent.body.get(key) for key in extra} == extra
    assert sent.body["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert sent.headers["anthropic-beta"] == "context-management-2025-06-27"


TOOL: Any = {"name": "lookup", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}
TOOL_TURNS: Any = [
    {"role": "user", "content": "look it up"},
    {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}]},
    {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_1",
                "content": "not found",
                "is_error": True,
                "cache_control": {"type": "ephemeral"},
            }
        ],
    },
]


def test_cache_control_on_tools_and_tool_results_reaches_anthropic(
    gw: Rig, claude: anthropic.Anthropic
) -> None:
    claude.messages.create(model="my-app-model", max_tokens=50, tools=[TOOL], messages=TOOL_TURNS)
    sent = gw.claude.last_request.body
    assert sent["tools"][0]["cache_control"] == {"type": "ephemeral"}
    result = sent["messages"][2]["content"][0]
    assert (result["cache_control"], result["is_error"]) == ({"type": "ephemeral"}, True)
    claude.messages.create(model="gpt-4o-mini", max_tokens=50, tools=[TOOL], messages=TOOL_TURNS)
    sent = gw.primary.last_request.body
    assert "cache_control" not in sent["tools"][0]
    assert not {"cache_control", "is_error"} & sent["messages"][2].keys()


def test_anthropic_only_fields_stay_away_from_openai_backends(gw: Rig, claude: anthropic.Anthropic) -> None:
    claude.messages.create(
        model="gpt-4o-mini",
        max_tokens=50,
        messages=[{"role": "user", "content": "hi"}],
        thinking={"type": "enabled", "budget_tokens": 1024},
        extra_body={"service_tier": "auto"},
    )
    sent = gw.primary.last_request.body
    assert not {"thinking", "service_tier", "anthropic"} & sent.keys()


def test_text_documents_are_text_for_openai_backends(gw: Rig, claude: anthropic.Anthropic) -> None:
    document = {
        "type": "document",
        "title": "Memo",
        "source": {"type": "text", "media_type": "text/plain", "data": "Budget: 12k."},
    }
    content: Any = [document, {"type": "text", "text": "What is the budget?"}]
    claude.messages.create(
        model="gpt-4o-mini", max_tokens=50, messages=[{"role": "user", "content": content}]
    )
    parts = gw.primary.last_request.body["messages"][0]["content"]
    assert parts[0] == {"type": "text", "text": "Memo\n\nBudget: 12k."}
    claude.messages.create(
        model="my-app-model", max_tokens=50, messages=[{"role": "user", "content": content}]
    )
    assert gw.claude.last_request.body["messages"][0]["content"][0] == document


def test_pdf_documents_are_refused_where_no_backend_reads_them(gw: Rig, claude: anthropic.Anthropic) -> None:
    pdf = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQK"},
    }
    content: Any = [pdf, {"type": "text", "text": "Summarise."}]
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(
            model="gpt-4o-mini", max_tokens=50, messages=[{"role": "user", "content": content}]
        )
    assert "document" in str(caught.value)
    assert not gw.primary.requests
    claude.messages.create(
        model="my-app-model", max_tokens=50, messages=[{"role": "user", "content": content}]
    )
    assert gw.claude.last_request.body["messages"][0]["content"][0] == pdf


@pytest.mark.parametrize(
    ("effort", "max_tokens", "thinking"),
    [
        ("low", None, {"type": "enabled", "budget_tokens": 1024}),
        ("medium", None, {"type": "enabled", "budget_tokens": 8192}),
        ("high", 60000, {"type": "enabled", "budget_tokens": 24576}),
        ("high", 4000, {"type": "enabled", "budget_tokens": 2000}),  # half the caller's limit
        ("low", 2000, None),  # no room for Anthropic's 1024-token minimum
        ("minimal", None, None),
    ],
)
def test_reasoning_effort_becomes_a_thinking_budget_for_anthropic(
    gw: Rig, effort: str, max_tokens: int | None, thinking: Any
) -> None:
    """OpenAI's ``reasoning_effort`` reaches the ``claude`` stand-in as ``thinking``; the answer's
    thinking comes back as ``reasoning_content``. Temperature is left out with thinking on."""
    gw.claude.script(ClaudeReply(text="Paris.", thinking="France: Paris."))
    ask: Any = {
        "model": "my-app-model",
        "reasoning_effort": effort,
        "temperature": 0.3,
        "messages": [{"role": "user", "content": "Capital of France?"}],
    }
    if max_tokens is not None:
        ask["max_completion_tokens"] = max_tokens
    with openai.OpenAI(base_url=f"{gw.url}/v1", api_key="caller-key", max_retries=0) as oai:
        completion = oai.chat.completions.create(**ask)
    sent = gw.claude.last_request.body
    assert sent.get("thinking") == thinking
    assert ("temperature" in sent) is (thinking is None)
    if thinking is not None:  # the answer keeps its room: the default 4096, or the caller's rest
        answer_room = 4096 if max_tokens is None else max_tokens - thinking["budget_tokens"]
        assert sent["max_tokens"] - thinking["budget_tokens"] == answer_room
    assert completion.choices[0].message.content == "Paris."
    assert getattr(completion.choices[0].message, "reasoning_content", None) == "France: Paris."
