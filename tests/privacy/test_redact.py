"""Placeholders in, originals back out: redaction of texts and whole requests, and restoring
whole and streamed text. All values are synthetic test data (Luhn test card, made-up keys)."""

from __future__ import annotations

import json

import pytest

from hybridgate.privacy.detect import PiiDetector
from hybridgate.privacy.redact import (
    RedactionMap,
    Redactor,
    StreamRestorer,
    map_request_texts,
    redact_request,
    request_texts,
)
from hybridgate.types import ChatRequest

EMAIL = "jane.roe@example.org"
OTHER_EMAIL = "sam.poe@example.net"
CARD = "4111 1111 1111 1111"
SSN = "536-22-8714"
IBAN = "GB82WEST12345698765432"
SK_KEY = "sk-proj-4fT9xQ2mL7vB1nR8cW3kZ6yH0jD5sA"


@pytest.fixture(scope="module")
def detector() -> PiiDetector:
    return PiiDetector(ner_model=None)


def test_placeholders_are_numbered_per_type_and_stable(detector: PiiDetector) -> None:
    redactor = Redactor(detector)
    first = redactor.redact(f"mail {EMAIL}, then {OTHER_EMAIL}, card {CARD}")
    second = redactor.redact(f"again {OTHER_EMAIL} and {EMAIL}")
    assert first == "mail <EMAIL_ADDRESS_1>, then <EMAIL_ADDRESS_2>, card <CREDIT_CARD_1>"
    assert second == "again <EMAIL_ADDRESS_2> and <EMAIL_ADDRESS_1>"
    assert redactor.map.counts == {"CREDIT_CARD": 1, "EMAIL_ADDRESS": 2}
    assert len(redactor.map) == 3


def test_restore_round_trip(detector: PiiDetector) -> None:
    redactor = Redactor(detector)
    original = f"SSN {SSN}, IBAN {IBAN}, key {SK_KEY}.\nReply to {EMAIL}."
    redacted = redactor.redact(original)
    for value in (SSN, IBAN, SK_KEY, EMAIL):
        assert value not in redacted
    assert redactor.restore(redacted) == original


def test_text_without_pii_is_untouched(detector: PiiDetector) -> None:
    redactor = Redactor(detector)
    text = "Summarise: revenue grew 12% in Q3 <b>despite</b> costs; see <TABLE_1>."
    assert redactor.redact(text) is text
    assert redactor.restore(text) is text
    assert len(redactor.map) == 0


def test_restore_leaves_unknown_placeholders(detector: PiiDetector) -> None:
    redactor = Redactor(detector)
    redactor.redact(f"to {EMAIL}")
    assert redactor.restore("<EMAIL_ADDRESS_1> <EMAIL_ADDRESS_2> <X>") == f"{EMAIL} <EMAIL_ADDRESS_2> <X>"


def test_restore_json_escapes_values_for_tool_arguments() -> None:
    redactions = RedactionMap()
    placeholder = redactions.placeholder_for("PRIVATE_KEY", 'line one\nline "two"')
    arguments = json.dumps({"key": placeholder})
    restored = redactions.restore(arguments, json_escaped=True)
    assert json.loads(restored) == {"key": 'line one\nline "two"'}


def test_map_repr_shows_counts_not_values(detector: PiiDetector) -> None:
    redactor = Redactor(detector)
    redactor.redact(f"{SK_KEY} {EMAIL}")
    assert SK_KEY not in repr(redactor.map)
    assert EMAIL not in repr(redactor.map)


def test_stream_restore_with_placeholder_split_across_deltas(detector: PiiDetector) -> None:
    redactor = Redactor(detector)
    redactor.redact(f"{EMAIL} {CARD}")
    stream = redactor.stream_restorer()
    deltas = ["Sure, I wrote to <EMAIL_AD", "DRESS_1", "> and charged <", "CREDIT_CARD_1>", " today."]
    out = [stream.feed(delta) for delta in deltas]
    assert out == ["Sure, I wrote to ", "", f"{EMAIL} and charged ", CARD, " today."]
    assert stream.flush() == ""


def test_stream_restore_one_character_at_a_time(detector: PiiDetector) -> None:
    redactor = Redactor(detector)
    redactor.redact(f"{EMAIL} and {SSN}")
    answer = "Noted <EMAIL_ADDRESS_1>, SSN <US_SSN_1>; a < b, <EMAIL_ADDRESS_9> stays"
    stream = redactor.stream_restorer()
    pieces = [stream.feed(char) for char in answer]
    assert "".join(pieces) + stream.flush() == f"Noted {EMAIL}, SSN {SSN}; a < b, <EMAIL_ADDRESS_9> stays"


def test_stream_flush_releases_an_unfinished_tail(detector: PiiDetector) -> None:
    redactor = Redactor(detector)
    redactor.redact(EMAIL)
    stream = redactor.stream_restorer()
    assert stream.feed("cut off at <EMAIL_ADDRESS_") == "cut off at "
    assert stream.flush() == "<EMAIL_ADDRESS_"


def test_stream_without_redactions_passes_through() -> None:
    stream = StreamRestorer(RedactionMap())
    assert stream.feed("a <EMAIL_ADDR") == "a <EMAIL_ADDR"


def request_with_every_slot() -> ChatRequest:
    return ChatRequest.model_validate(
        {
            "model": "auto",
            "messages": [
                {"role": "system", "content": "You are a support agent."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": f"I am {EMAIL}; card {CARD}."},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {
                                "name": "lookup",
                                "arguments": json.dumps({"email": EMAIL, "card": 4111111111111111, "n": 3}),
                            },
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": f"owner SSN {SSN}, IBAN {IBAN}"},
                {"role": "user", "content": f"Also my key {SK_KEY} and again {EMAIL}"},
            ],
            "temperature": 0.2,
            "custom_field": {"kept": True},
        }
    )


def test_redact_request_covers_messages_parts_tool_calls_and_results(detector: PiiDetector) -> None:
    request = request_with_every_slot()
    redacted, redactions = redact_request(request, detector)
    body = json.dumps(redacted.model_dump(exclude_none=True))
    for value in (EMAIL, CARD, "4111111111111111", SSN, IBAN, SK_KEY):
        assert value not in body
    messages = redacted.messages
    assert messages[1].content == [
        {"type": "text", "text": "I am <EMAIL_ADDRESS_1>; card <CREDIT_CARD_1>."},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    arguments = json.loads((messages[2].tool_calls or [])[0]["function"]["arguments"])
    assert arguments == {"email": "<EMAIL_ADDRESS_1>", "card": "<CREDIT_CARD_2>", "n": 3}
    assert messages[3].content == "owner SSN <US_SSN_1>, IBAN <IBAN_CODE_1>"
    assert messages[3].tool_call_id == "call_1"
    assert messages[4].content == "Also my key <API_KEY_1> and again <EMAIL_ADDRESS_1>"
    assert redacted.temperature == 0.2
    assert redacted.model_extra == {"custom_field": {"kept": True}}
    assert redactions.counts == {
        "API_KEY": 1,
        "CREDIT_CARD": 2,
        "EMAIL_ADDRESS": 1,
        "IBAN_CODE": 1,
        "US_SSN": 1,
    }


def test_redact_request_leaves_the_original_alone(detector: PiiDetector) -> None:
    request = request_with_every_slot()
    before = request.model_dump()
    redact_request(request, detector)
    assert request.model_dump() == before


def test_redact_request_reuses_findings_from_the_decision_scan(detector: PiiDetector) -> None:
    request = request_with_every_slot()
    findings = detector.scan(request_texts(request))
    assert findings.counts == {
        "API_KEY": 1,
        "CREDIT_CARD": 2,
        "EMAIL_ADDRESS": 3,
        "IBAN_CODE": 1,
        "US_SSN": 1,
    }
    reused, _ = redact_request(request, detector, findings)
    rescanned, _ = redact_request(request, detector)
    assert reused.model_dump() == rescanned.model_dump()
    with pytest.raises(ValueError, match="do not belong"):
        redact_request(request, detector, detector.scan(["one text"]))


def test_request_texts_follow_the_slots_in_order() -> None:
    texts = request_texts(request_with_every_slot())
    assert texts[0] == "You are a support agent."
    assert texts[1] == f"I am {EMAIL}; card {CARD}."
    assert texts[2:6] == ["email", EMAIL, "card", "4111111111111111"]
    assert texts[-1] == f"Also my key {SK_KEY} and again {EMAIL}"


def test_request_without_pii_comes_back_equal(detector: PiiDetector) -> None:
    request = ChatRequest.model_validate(
        {"model": "auto", "messages": [{"role": "user", "content": "hello"}]}
    )
    redacted, redactions = redact_request(request, detector)
    assert redacted.model_dump() == request.model_dump()
    assert len(redactions) == 0


def test_unparseable_tool_arguments_are_redacted_as_text(detector: PiiDetector) -> None:
    request = ChatRequest.model_validate(
        {
            "model": "auto",
            "messages": [
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c",
                            "type": "function",
                            "function": {"name": "f", "arguments": f"{{email: {EMAIL}"},
                        }
                    ],
                }
            ],
        }
    )
    redacted = map_request_texts(request, Redactor(detector).redact)
    assert (redacted.messages[0].tool_calls or [])[0]["function"]["arguments"] == "{email: <EMAIL_ADDRESS_1>"
