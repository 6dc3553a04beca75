"""Short local phone numbers without a phone word, and the numbers they must not be mistaken
for; all values are synthetic test data."""

from __future__ import annotations

import pytest

from hybridgate.privacy.detect import PiiDetector


@pytest.fixture(scope="module")
def detector() -> PiiDetector:
    return PiiDetector(ner_model=None)


def phones(detector: PiiDetector, text: str) -> list[str]:
    return [text[s.start : s.end] for s in detector.scan_text(text) if s.entity_type == "PHONE_NUMBER"]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("no reply yet at 471 2285, odd", "471 2285"),
        ("registered 471-2285 last week", "471-2285"),
        ("messages to 0921-6473318. Please check", "0921-6473318"),
        ("reach me at 42 913377", "42 913377"),
        ("(+44) 7911 123456", "7911 123456"),
        ("desk 471-2285 ext. 12", "471-2285 ext. 12"),
        ("471 2285\n", "471 2285"),
        ("in 1850 2285 4711 rang", "1850 2285 4711"),  # three groups: not read as a year
    ],
)
def test_two_group_number_is_a_phone_without_a_phone_word(
    detector: PiiDetector, text: str, value: str
) -> None:
    assert phones(detector, text) == [value]


@pytest.mark.parametrize(
    "text",
    [
        "Austin, TX 78701-4432",  # ZIP+4
        "in 2021 4400 units shipped",  # a year, then a figure (a table row)
        "during 1939-1945 the war",  # a range of years
        "open 0900-1730 daily",  # a range of times
        "write 500-1000 words",  # a range of round numbers
        "it costs $4521 8890",  # an amount
        "ticket #4521 8890",  # an id
        "growth of 1234 5678%",  # a share
        "Apt. 614 55210 Lindenweg",  # a flat number, then a house number
        "suite 614 5521",
        "He lives at 17151 2450 Hill Road",  # a house number
        "at 9543 1819 St. John Street",
        "pi is 3.1415926",  # a decimal: dotted short numbers need a phone word
        "id 467.3395",
        "order 4111 1111 1111 1112 failed",  # no group of a longer number is a phone
        "4711 2285 9",
    ],
)
def test_other_numbers_are_not_phones(detector: PiiDetector, text: str) -> None:
    assert phones(detector, text) == []


def test_dotted_short_number_counts_as_phone_after_a_phone_word(detector: PiiDetector) -> None:
    assert phones(detector, "phone 467.3395") == ["467.3395"]
    assert phones(detector, "mobile: 0341 834") == ["0341 834"]


def test_ranges_that_are_not_round_years_or_times_stay_phones(detector: PiiDetector) -> None:
    # Descending, or neither round nor years nor times: read as a phone number.
    assert phones(detector, "ring 5521-4711") == ["5521-4711"]
    assert phones(detector, "ring 4711-5529") == ["4711-5529"]
