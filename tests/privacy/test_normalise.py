"""Normalising text before detection, and mapping offsets back (pure string work)."""

from __future__ import annotations

import pytest

from hybridgate.privacy.normalise import normalise


@pytest.mark.parametrize(
    ("text", "expected", "same_offsets"),
    [
        ("plain ascii", "plain ascii", True),
        ("a\u00a0b\u202fc é", "a b c é", True),  # spaces of every kind, same length
        ("\uff14\uff11 x", "41 x", True),  # fullwidth digits
        ("x\u200by\u2060z\ufeff", "xyz", False),  # zero-width characters dropped
        ("\ufb01ne \u00ad1", "fine 1", False),  # a ligature grows, a soft hyphen goes
    ],
)
def test_normalised_text_and_offsets(text: str, expected: str, same_offsets: bool) -> None:
    normalised = normalise(text)
    assert normalised.text == expected
    assert (normalised.origins is None) == same_offsets
    # every normalised character maps back to the characters it came from
    for i, char in enumerate(normalised.text):
        start, end = normalised.span(i, i + 1)
        source = text[start:end]
        assert char == source or normalise(source).text.find(char) >= 0 or char == " "


def test_a_span_maps_back_over_the_zero_width_characters_inside_it() -> None:
    text = "mail a\u200bb@c.org now"
    normalised = normalise(text)
    start = normalised.text.index("ab@c.org")
    assert text[slice(*normalised.span(start, start + len("ab@c.org")))] == "a\u200bb@c.org"
