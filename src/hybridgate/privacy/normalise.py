"""Normalise a text before PII detection, keeping the way back to the original offsets.

Part of the privacy layer's detector; pure string work. Numbers and addresses written with
non-breaking or narrow non-breaking spaces, fullwidth digits or zero-width characters look like
nothing to the ASCII-minded patterns, so each character goes through Unicode NFKC (fullwidth
``U+FF14`` becomes ``4``, every kind of space a plain one), and zero-width characters and soft
hyphens are dropped. ``Normalised.span`` maps a match in the normalised text back to the original,
so redaction replaces exactly the characters the caller wrote. ASCII texts, the common case, are
returned as they are at the cost of one ``str.isascii``.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

# Characters with no width that can split a number or an address without being seen.
DROPPED = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e")


@dataclass(frozen=True)
class Normalised:
    """``text`` as the detector scans it; ``origins[i]`` is the original index of ``text[i]``
    (None when nothing changed)."""

    text: str
    origins: tuple[int, ...] | None

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original offsets of ``text[start:end]``."""
        if self.origins is None:
            return start, end
        return self.origins[start], self.origins[end - 1] + 1


def normalise(text: str) -> Normalised:
    if text.isascii():
        return Normalised(text, None)
    parts: list[str] = []
    origins: list[int] = []
    for index, char in enumerate(text):
        if char.isascii():
            parts.append(char)
            origins.append(index)
            continue
        if char in DROPPED:
            continue
        mapped = unicodedata.normalize("NFKC", char)
        if mapped.isspace():
            mapped = " "  # NBSP, narrow NBSP, figure and thin spaces, ideographic space ...
        parts.append(mapped)
        origins.extend([index] * len(mapped))
    joined = "".join(parts)
    if joined == text:
        return Normalised(text, None)
    return Normalised(joined, tuple(origins))
