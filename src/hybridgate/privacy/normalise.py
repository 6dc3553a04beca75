"""Normalise a text before PII detection, keeping the way back to the original offsets.

Part of the privacy layer's detector; pure string work. Numbers and addresses written with
non-breaking or narrow non-breaking spaces, fullwidth digits or zero-width characters look like
nothing to the ASCII-minded patterns, so each character goes through Unicode NFKC (fullwidth
``U+FF14`` becomes ``4``, every kind of space a plain one), and zero-width characters and soft
hyphens are dropped. ``Normalised.span`` maps a match in the normalised text back to the original,
so redaction replaces exactly the characters the caller wrote. ASCII texts, the common case, are
returned as they are at the cost of one ``str.isascii``; elsewhere only the non-ASCII runs are
mapped, and the offset table is built only when a character changes length.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Characters with no width that can split a number or an address without being seen.
DROPPED = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


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
    origins: list[int] | None = None  # built only once a character changes length
    cursor = 0
    for run in _NON_ASCII.finditer(text):
        start, end = run.span()
        mapped = [_char(c) for c in run.group()]
        if origins is None and any(len(m) != 1 for m in mapped):
            origins = list(range(cursor))  # every earlier character kept its length
        parts.append(text[cursor:start])
        if origins is not None:
            origins.extend(range(cursor, start))
            for index, value in enumerate(mapped, start):
                origins.extend([index] * len(value))
        parts.extend(mapped)
        cursor = end
    parts.append(text[cursor:])
    joined = "".join(parts)
    if origins is None:
        return Normalised(joined, None)  # same length: offsets carry over as they are
    origins.extend(range(cursor, len(text)))
    return Normalised(joined, tuple(origins))


def _char(char: str) -> str:
    if char in DROPPED:
        return ""
    mapped = unicodedata.normalize("NFKC", char)
    return " " if mapped.isspace() else mapped  # NBSP, narrow NBSP, figure, thin, ideographic ...
