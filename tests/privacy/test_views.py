"""Narrowed scans must find exactly what full scans find; values are synthetic test data."""

from __future__ import annotations

import re

import pytest
from presidio_analyzer import RecognizerResult

from hybridgate.privacy.recognizers import pattern_recognizers
from hybridgate.privacy.views import analyze_pieces, numeric_view, token_view

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
    "",
]


@pytest.mark.parametrize("text", TEXTS)
def test_scoped_recognizers_match_full_scans(text: str) -> None:
    for scoped in pattern_recognizers():
        entities = list(scoped.recognizer.supported_entities)
        narrowed = sorted((r.start, r.end, r.score) for r in scoped.analyze(text, entities, {}))
        full = sorted((r.start, r.end, r.score) for r in scoped.recognizer.analyze(text, entities))
        assert narrowed == full, type(scoped.recognizer).__name__


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
