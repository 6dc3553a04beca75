"""Cards beyond the known ranges and IBANs in any case; all values are synthetic test data.

908172635447 and 9081 7263 5447 are made-up numbers given a Luhn check digit; no card range
starts with 90. GB82WEST12345698765432 is the published example IBAN, and GB76WEST60161331000007
is built here with a valid mod-97 checksum around a Luhn-valid 14-digit account part.
"""

from __future__ import annotations

import pytest

from hybridgate.privacy.detect import PiiDetector
from hybridgate.privacy.recognizers import LuhnNumberRecognizer, luhn_valid

LUHN_NUMBER = "908172635447"
KNOWN_CARD = "4111 1111 1111 1111"
IBAN_WITH_LUHN_DIGITS = "GB76 WEST 6016 1331 0000 07"


@pytest.fixture(scope="module")
def detector() -> PiiDetector:
    return PiiDetector(ner_model=None)


def found(detector: PiiDetector, text: str) -> list[tuple[str, str, float]]:
    return [(s.entity_type, text[s.start : s.end], s.score) for s in detector.scan_text(text)]


def test_luhn_check() -> None:
    assert luhn_valid("79927398713")
    assert luhn_valid(LUHN_NUMBER)
    assert not luhn_valid("79927398710")
    assert not luhn_valid("908172635448")


@pytest.mark.parametrize(
    "value",
    [LUHN_NUMBER, "9081 7263 5447", "9081-7263-5447", "302019181718", "081512345678904"],
)
def test_luhn_valid_number_outside_card_ranges_is_a_card(detector: PiiDetector, value: str) -> None:
    assert found(detector, f"points on account {value} expired") == [("CREDIT_CARD", value, 0.5)]


def test_known_card_keeps_the_verified_score(detector: PiiDetector) -> None:
    assert found(detector, f"card {KNOWN_CARD}") == [("CREDIT_CARD", KNOWN_CARD, 1.0)]


@pytest.mark.parametrize(
    "text",
    [
        "ref 908172635448 ok",  # fails Luhn
        "id 0000 0000 0000 is a placeholder",  # Luhn-valid, but one digit repeated
        "12345678901234567890 is twenty digits",  # longer than any card
        "x908172635447 and 908172635447x are parts of words",
        "ratio 0.908172635447 is a decimal",
        "+908172635447",  # an international phone number at most
        "grouped 12 9081 7263 5447 is one longer number",
    ],
)
def test_luhn_rule_stays_out_of_lookalikes(detector: PiiDetector, text: str) -> None:
    assert "CREDIT_CARD" not in {kind for kind, _, _ in found(detector, text)}


def test_iban_beats_the_luhn_valid_digits_inside_it(detector: PiiDetector) -> None:
    # The control: alone, the account part would be a card.
    assert LuhnNumberRecognizer().analyze(IBAN_WITH_LUHN_DIGITS, ["CREDIT_CARD"])
    text = f"IBAN {IBAN_WITH_LUHN_DIGITS}."
    assert found(detector, text) == [("IBAN_CODE", IBAN_WITH_LUHN_DIGITS, 1.0)]


@pytest.mark.parametrize(
    "value",
    [
        "gb82west12345698765432",
        "Gb82West12345698765432",
        "gb76 west 6016 1331 0000 07",
        "de89-3704-0044-0532-0130-00",
    ],
)
def test_iban_in_any_case_is_found(detector: PiiDetector, value: str) -> None:
    assert found(detector, f"my iban is {value}, thanks") == [("IBAN_CODE", value, 1.0)]


@pytest.mark.parametrize(
    "text",
    [
        "my iban is gb82west12345698765431",  # checksum off by one
        "xgb82west12345698765432",  # part of a longer word
        "model ab12cdef34 on port de90",  # letters and digits, no valid IBAN
    ],
)
def test_lower_case_iban_still_needs_its_checksum(detector: PiiDetector, text: str) -> None:
    assert "IBAN_CODE" not in {kind for kind, _, _ in found(detector, text)}
