"""Privacy policies end to end, through the official openai SDK over real HTTP.

``cloud`` is an OpenAI-compatible stand-in on loopback that records every request it receives
(it is not OpenAI); ``local`` is another stand-in marked ``local = true``, standing for a model
served inside the deployment. The stand-ins echo the last user message, so what the cloud tier
saw comes back in the answer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from hybridgate.app import create_app
from hybridgate.config import GatewayConfig
from hybridgate.gateway import Gateway
from tests.servers import serve_in_thread
from tests.standins.openai_upstream import Fail, OpenAIStandIn, run_openai_standin

EMAIL = "ada.lovelace@example.com"
CARD = "4111 1111 1111 1111"
PII_TEXT = f"Mail {EMAIL} about card {CARD} please"


@dataclass
class PrivacyRig:
    client: openai.OpenAI
    gateway: Gateway
    local: OpenAIStandIn
    cloud: OpenAIStandIn

    def last_row(self) -> dict[str, Any]:
        self.gateway.ledger.flush()
        return self.gateway.ledger.recent(1)[0]

    def cloud_saw(self) -> str:
        return json.dumps([r.body for r in self.cloud.requests])


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivacyRig]:
    ledger = tmp_path_factory.mktemp("privacy") / "gw.db"
    with run_openai_standin() as local, run_openai_standin() as cloud:
        remote = {"type": "openai_compat", "model": "m", "timeout_s": 5}
        config = GatewayConfig.model_validate(
            {
                "backends": {
                    "local": {**remote, "base_url": local.base_url, "local": True},
                    "cloud": {**remote, "base_url": cloud.base_url},
                },
                "routes": {
                    "auto": {"try": ["local", "cloud"]},
                    "cloud": {"try": ["cloud"]},
                    "redacted": {"try": ["cloud"]},
                    "blocked": {"try": ["local", "cloud"]},
                    "open": {"try": ["cloud"]},
                },
                "rules": [{"name": "code-questions", "regex": "(?i)python", "route": "open"}],
                "privacy": {
                    # the environment default allows; routes can only tighten it
                    "policy": "allow",
                    "routes": {
                        "auto": "local_only",
                        "cloud": "local_only",
                        "redacted": "redact",
                        "blocked": "block",
                    },
                    "ner_model": None,
                },
                "ledger": {"path": str(ledger), "cohort_labels": ["beta"]},
                "cache": {"store": "memory"},  # only temperature-0 requests use it
            }
        )
        app = create_app(config, env={})
        with (
            serve_in_thread(app) as url,
            openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) as client,
        ):
            yield PrivacyRig(client, app.state.gateway, local, cloud)


@pytest.fixture
def pr(rig: PrivacyRig) -> PrivacyRig:
    rig.local.reset()
    rig.cloud.reset()
    return rig


def user(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


def test_local_only_keeps_pii_local_even_when_the_local_tier_fails(pr: PrivacyRig) -> None:
    reply = pr.client.chat.completions.create(model="auto", messages=user(PII_TEXT))
    assert reply.choices[0].message.content == f"echo: {PII_TEXT}"
    assert len(pr.local.requests) == 1 and not pr.cloud.requests
    pr.local.script(Fail(status=503, type="server_error"))
    with pytest.raises(openai.APIStatusError) as err:
        pr.client.chat.completions.create(model="auto", messages=user(PII_TEXT))
    assert err.value.status_code == 503
    assert not pr.cloud.requests  # fail closed: no fallback to the cloud tier
    row = pr.last_row()
    assert row["pii"] == "CREDIT_CARD=1,EMAIL_ADDRESS=1" and row["privacy"] == "local_only"
    assert EMAIL not in json.dumps(row) and CARD not in json.dumps(row)


def test_local_only_route_without_local_tier_is_refused(pr: PrivacyRig) -> None:
    with pytest.raises(openai.PermissionDeniedError, match="must stay local") as err:
        pr.client.chat.completions.create(model="cloud", messages=user(PII_TEXT))
    assert EMAIL not in str(err.value)  # the error names entity types, never values
    assert not pr.cloud.requests


def test_clean_prompt_may_use_the_cloud(pr: PrivacyRig) -> None:
    pr.client.chat.completions.create(model="cloud", messages=user("What is 2 + 2?"))
    assert len(pr.cloud.requests) == 1


@pytest.mark.parametrize("stream", [False, True])
def test_redact_sends_placeholders_and_restores_the_answer(pr: PrivacyRig, stream: bool) -> None:
    if stream:
        chunks = pr.client.chat.completions.create(model="redacted", messages=user(PII_TEXT), stream=True)
        answer = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        reply = pr.client.chat.completions.create(model="redacted", messages=user(PII_TEXT))
        answer = reply.choices[0].message.content or ""
    assert answer == f"echo: {PII_TEXT}"  # the caller gets its own values back
    saw = pr.cloud_saw()
    assert EMAIL not in saw and "4111" not in saw
    assert "<EMAIL_ADDRESS_1>" in saw and "<CREDIT_CARD_1>" in saw
    assert pr.last_row()["privacy"] == "redact"


def test_redact_covers_tool_arguments_and_tool_results(pr: PrivacyRig) -> None:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "look up my account"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": json.dumps({"email": EMAIL})},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": f"account of {EMAIL}, card {CARD}"},
        {"role": "user", "content": "thanks"},
    ]
    pr.client.chat.completions.create(model="redacted", messages=messages)
    saw = pr.cloud_saw()
    assert EMAIL not in saw and "4111" not in saw and saw.count("<EMAIL_ADDRESS_1>") == 2


def test_block_refuses_pii_and_allow_lets_it_through(pr: PrivacyRig) -> None:
    with pytest.raises(openai.PermissionDeniedError, match="'block'"):
        pr.client.chat.completions.create(model="blocked", messages=user(PII_TEXT))
    assert not pr.local.requests and not pr.cloud.requests
    pr.client.chat.completions.create(model="open", messages=user(PII_TEXT))
    assert EMAIL in pr.cloud_saw()


@pytest.mark.parametrize(
    "text",
    [
        "\x00\x01\x02 binary junk \xff",
        "".join(map(chr, (0x1D518, 0x1D52B, 0xFDFD, 0x20))) * 50,
        "a" * 200_000,
        f"zero{chr(0x200B)}width {EMAIL}",
    ],
)
def test_odd_input_never_crashes_detection_nor_bypasses_policy(pr: PrivacyRig, text: str) -> None:
    pr.client.chat.completions.create(model="auto", messages=user(text))
    assert EMAIL not in pr.cloud_saw()
    assert pr.last_row()["status"] == 200


def test_logs_hold_no_pii(pr: PrivacyRig, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        pr.client.chat.completions.create(model="redacted", messages=user(PII_TEXT))
        with pytest.raises(openai.PermissionDeniedError):
            pr.client.chat.completions.create(model="blocked", messages=user(PII_TEXT))
    assert caplog.records  # something was logged, so the check below looked at real output
    assert EMAIL not in caplog.text and "4111" not in caplog.text


def test_healthz_says_what_is_detected(pr: PrivacyRig) -> None:
    health = httpx.get(str(pr.client.base_url).replace("/v1/", "/healthz")).json()
    privacy = health["privacy"]
    assert "EMAIL_ADDRESS" in privacy["entities"] and "PERSON" in privacy["not_covered"]


def test_requests_with_pii_are_never_served_from_or_written_to_the_cache(pr: PrivacyRig) -> None:
    headers = []
    for text in (PII_TEXT, PII_TEXT, "no personal data here", "no personal data here"):
        raw = pr.client.chat.completions.with_raw_response.create(
            model="auto", messages=user(text), temperature=0
        )
        headers.append(raw.headers.get("x-hybridgate-cache"))
    assert headers == ["bypass", "bypass", "miss", "hit"]
    assert len(pr.local.requests) == 3  # both PII requests reached the (local) backend


@pytest.mark.parametrize(
    ("how", "headers"),
    [
        ("a rule moves it to an allowing route", {}),
        ("a header names an allowing route", {"x-hybridgate-route": "open"}),
    ],
)
def test_rules_and_headers_never_loosen_the_asked_route_policy(
    pr: PrivacyRig, how: str, headers: dict[str, str]
) -> None:
    """model="auto" is local_only; "open" allows. A rule ("Python") or the header lands the
    request on "open", and it is still held to auto's policy: answered by nobody in the cloud."""
    text = f"{PII_TEXT} in my Python script"
    with pytest.raises(openai.PermissionDeniedError, match="must stay local"):
        pr.client.chat.completions.create(model="auto", messages=user(text), extra_headers=headers)
    assert not pr.cloud.requests, how
    row = pr.last_row()
    assert row["privacy"] == "local_only" and row["egress"] == ["cloud:live:blocked"]


def test_naming_an_allowing_route_directly_gets_its_policy(pr: PrivacyRig) -> None:
    """By design (docs/privacy.md): a request that names a route gets that route's policy,
    never looser than the environment default and its key's."""
    pr.client.chat.completions.create(model="open", messages=user(PII_TEXT))
    assert EMAIL in pr.cloud_saw()
    assert pr.last_row()["egress"] == ["cloud:live:allowed"]


def test_every_text_slot_is_redacted_or_removed(pr: PrivacyRig) -> None:
    """A message's name, legacy function_call arguments, refusal, reasoning_content and fields
    the gateway does not know, and the request's user and metadata."""
    messages: list[Any] = [
        {"role": "user", "content": "hi", "name": EMAIL},
        {
            "role": "assistant",
            "content": None,
            "refusal": f"I will not mail {EMAIL}",
            "reasoning_content": f"the card is {CARD}",
            "function_call": {"name": "lookup", "arguments": json.dumps({"card": CARD})},
            "notes": f"unknown field holding {EMAIL}",
        },
        {"role": "user", "content": "go on"},
    ]
    pr.client.chat.completions.create(
        model="redacted",
        messages=messages,
        user=EMAIL,
        metadata={"owner": EMAIL},
        extra_body={"custom_context": f"call {CARD}", "frequency_penalty": 0.5},
    )
    body = pr.cloud.requests[-1].body
    saw = json.dumps(body)
    assert EMAIL not in saw and "4111" not in saw
    assert body["messages"][0]["name"] == "<EMAIL_ADDRESS_1>" and body["user"] == "<EMAIL_ADDRESS_1>"
    assert "<CREDIT_CARD_1>" in body["messages"][1]["function_call"]["arguments"]
    assert body["messages"][1]["refusal"] == "I will not mail <EMAIL_ADDRESS_1>"
    assert "notes" not in body["messages"][1] and "custom_context" not in body  # unknown: removed
    assert body["frequency_penalty"] == 0.5  # known, not text: kept


def test_pii_only_in_a_name_field_keeps_the_request_local(pr: PrivacyRig) -> None:
    messages: list[Any] = [{"role": "user", "content": "hello there", "name": EMAIL}]
    pr.client.chat.completions.create(model="auto", messages=messages)
    assert not pr.cloud.requests and pr.last_row()["pii"] == "EMAIL_ADDRESS=1"


def test_cohort_is_stored_as_an_hmac_unless_it_is_a_configured_label(pr: PrivacyRig) -> None:
    pr.client.chat.completions.create(model="auto", messages=user("hello"), user=EMAIL)
    stored = pr.last_row()["cohort"]
    assert EMAIL not in json.dumps(pr.last_row()) and stored.startswith("hmac:") and len(stored) == 21
    pr.client.chat.completions.create(model="auto", messages=user("hello"), user="beta")
    assert pr.last_row()["cohort"] == "beta"


def test_anthropic_user_id_is_scanned_and_stored_as_an_hmac(pr: PrivacyRig) -> None:
    """Anthropic metadata.user_id becomes the request's `user`: scanned like any text slot (here
    it alone holds PII, so the request stays local) and kept in the ledger as an HMAC."""
    url = str(pr.client.base_url).removesuffix("/").removesuffix("/v1")
    with anthropic.Anthropic(base_url=url, api_key="k", max_retries=0) as claude:
        claude.messages.create(
            model="auto",
            max_tokens=20,
            messages=[{"role": "user", "content": "hello there"}],
            metadata={"user_id": EMAIL},
        )
    row = pr.last_row()
    assert not pr.cloud.requests and row["pii"] == "EMAIL_ADDRESS=1"
    assert row["cohort"].startswith("hmac:") and EMAIL not in json.dumps(row)
