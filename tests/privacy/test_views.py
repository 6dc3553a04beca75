"""Narrowed scans must find exactly what full scans find; values are synthetic test data."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest
from presidio_analyzer import RecognizerResult

from hybridgate.privacy.recognizers import pattern_recognizers
from hybridgate.privacy.views import (
    Narrowed,
    analyze_pieces,
    numeric_view,
    token_view,
    widened,
    window_view,
    with_digits,
)

TEXTS = [
    "4111 1111 1111 1111",
    "jane.roe@example.org",
    "call +44 20 7946 0958 or (212) 555-0134, fax 212.555.0199; SSN 536-22-8714.",
    "x4111111111111111 and 4111111111111111x are not cards, 4111-1111-1111-1111 is",
    "host 203.0.113.7:8080, [2001:db8::1], a@b.co,c@d.io and mail:x@example.com!",
    "Mobile:\n0341 8387176\nDesk: 467 3395 ext. 12\nroom 17151 2450",
    "(212) 555-0134 ext. 12, +1-903-140-4508 x769 and 345-899-3560x4587 extension",
    "tel+1-984-182-0190 / 001-518-640-0854 / 259.735.7502x459 / 2000-04-16 11:34",
    "v1.2.3.4 and 10.0.0.256 and 1.1.1.1/24 at the end 192.168.1.20",
    "card 6304 2737 3398, 2223 0000 4841 0010, 4131034282458809939.",
    # Lower-case and grouped IBANs (the window view), Luhn-valid numbers outside card ranges.
    "iban gb82west12345698765432; GB76 WEST 6016 1331 0000 07 and xgb82west12345698765432",
    "acct 908172635447, 9081 7263 5447 and 12 9081 7263 5447 or 0.908172635447",
    # Local phones and their guards, which read up to 12 characters before and 40 after.
    "Apartment 614 55210, $ 4521 8890, #4521 8890 and 1234 5678% but 471 2285 ok",
    "17151 2450   Hill   Road, 17151 2450 " + "x" * 40 + " Road, TX 78701-4432, 2021 4400",
    "(212)\n555-0134 and (2)\n1234 and 12\n345 678",  # matches across touching numeric runs
    "",
]


@pytest.mark.parametrize("text", TEXTS)
def test_scoped_recognizers_match_full_scans(text: str) -> None:
    for scoped in pattern_recognizers():
        entities = list(scoped.recognizer.supported_entities)
        narrowed = sorted((r.start, r.end, r.score) for r in scoped.analyze(text, entities))
        full = sorted((r.start, r.end, r.score) for r in scoped.recognizer.analyze(text, entities))
        assert narrowed == full, type(scoped.recognizer).__name__


def test_scoped_recognizers_match_full_scans_on_random_number_soup() -> None:
    """Seeded random strings of numbers, separators and the guards' words and signs."""
    rng = random.Random(8)
    atoms = [
        *" -.()+\n",
        *("x", ", ", " to ", "phone ", "Apt. ", " Road", " St", "$", "#", "%", "ext. "),
        *("555", "1234", "42", "7", "1939", "2021", "10.0.0.1", "536-22-8714"),
        *("555 1234", "0921-6473318", "42 913377", "908172635447", "4111 1111 1111 1111"),
        *("gb82west12345698765432", "GB82 WEST 1234 5698 7654 32"),
    ]
    scoped = pattern_recognizers()
    matched: Counter[str] = Counter()
    for _ in range(300):
        text = "".join(rng.choice(atoms) for _ in range(rng.randint(3, 16)))
        for one in scoped:
            name, entities = type(one.recognizer).__name__, list(one.recognizer.supported_entities)
            narrowed = sorted((r.start, r.end, r.score) for r in one.analyze(text, entities))
            full = sorted((r.start, r.end, r.score) for r in one.recognizer.analyze(text, entities))
            assert narrowed == full, (name, text)
            matched[name] += len(full)
    number_recognizers = (
        "Card",
        "LuhnNumber",
        "Ssn",
        "RegexPhone",
        "LocalPhone",
        "ContextPhone",
        "CaseBlindIban",
    )
    assert all(matched[f"{name}Recognizer"] >= 10 for name in number_recognizers), matched


def test_token_view_takes_whole_tokens_once() -> None:
    view = token_view(re.compile("@"))
    text = "to a@b.co@c, then\tme@x.org"
    assert [text[s:e] for s, e in view(text)] == ["a@b.co@c,", "me@x.org"]


def test_numeric_view_keeps_a_leading_plus_or_parenthesis() -> None:
    text = "dial +44 20 7946 0958 or (212) 555-0134 now"
    assert [text[s:e] for s, e in numeric_view(text)] == ["+44 20 7946 0958 ", "(212) 555-0134 "]


def test_analyze_pieces_maps_offsets_back() -> None:
    text = "aaa 123 bbb 4567 ccc"
    digits = re.compile(r"\d+")

    def analyze(joined: str) -> list[RecognizerResult]:
        return [RecognizerResult("N", m.start(), m.end(), 1.0) for m in digits.finditer(joined)]

    results = analyze_pieces(analyze, text, numeric_view(text))
    assert [text[r.start : r.end] for r in results] == ["123", "4567"]


def test_window_view_reaches_a_fixed_stretch_around_each_anchor() -> None:
    view = window_view(re.compile("@"), (2, 4))
    text = "ab@cdefgh and @x"
    assert [text[s:e] for s, e in view(text)] == ["ab@cde", "d @x"]


def test_widened_and_with_digits_adjust_spans_within_the_text() -> None:
    text = "a 12 bc 1234567 d"
    spans = numeric_view(text)
    assert [text[s:e] for s, e in with_digits(text, spans, 7)] == ["1234567 "]
    assert [text[s:e] for s, e in widened(text, spans, (3, 100))] == [text, "bc 1234567 d"]
    assert widened(text, spans, (0, 0)) is spans


def test_narrowed_computes_each_view_once_per_text() -> None:
    calls: list[str] = []

    def view(text: str) -> list[tuple[int, int]]:
        calls.append(text)
        return numeric_view(text)

    narrowed = Narrowed("call 555 1234 or 12")
    wide = narrowed.pieces(view, (2, 0))
    assert narrowed.pieces(view, (2, 0)) is wide
    # Each piece keeps one character either side; pieces that touch are merged.
    assert narrowed.pieces(view, min_digits=7).joined == " 555 1234 o"
    assert wide.joined == "all 555 1234 or 12"  # the margin comes on top of that character
    assert narrowed.pieces(view).joined == " 555 1234 o\n\n 12"
    # Digits count per piece: a match may run across the spans a piece joins.
    assert Narrowed("(212)\n555-0134").pieces(numeric_view, min_digits=10).joined == "(212)\n555-0134"
    assert len(calls) == 1
