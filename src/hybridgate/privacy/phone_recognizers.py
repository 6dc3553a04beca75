"""Phone-number recognizers: regexes for common layouts, in place of Presidio's PhoneRecognizer.

Part of the privacy layer under the pipeline; pure regex work, no I/O. Presidio's own
``PhoneRecognizer`` runs libphonenumber's matcher once per region, about 40 ms per 1,000-token
prompt, eight times the whole scan budget; these cost well under a millisecond.

Scored like Presidio's (0.4): below an SSN (0.5) and a Luhn-valid card (1.0), so a number
that fits several shapes is reported as the stronger finding by ``detect.py``.

The trade-off leans to recall: under ``local_only`` a missed number is a leak, while a false
one only keeps a request local or redacts a number. So short two-group numbers count without
a phone word (``LocalPhoneRecognizer``), unless they read as another kind of number; only
shapes that are mostly something else (dotted "467.3395", bare digit runs) need the word.
"""

from __future__ import annotations

import re

from presidio_analyzer import Pattern, PatternRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

SCORE = 0.4
CONTEXT = ["phone", "telephone", "tel", "mobile", "cell", "call", "fax", "desk", "office", "contact"]

_EXT = r"(?:\s?(?:x|ext\.?)\s?\d{1,5})?"
_END = r"(?!\w|[-.]\d)"
# Patterns open with the first digit and look behind it: a leading assertion would stop the
# regex engine from skipping ahead to candidate characters, and costs ~5x on prose.
_DIGIT = r"\d(?<![\w+\-.]\d)"
# Not a later group of a longer grouped number ("1111" in "4111 1111 1111"), nor followed by one.
_NOT_GROUP = r"(?<!\d[ .\-]\d)"
_ALONE = r"(?!\w|[ .\-]\d)"
_DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{4}")
_EXTENSION = re.compile(r"\s*(?:x|ext\.?)\s*\d+$", re.IGNORECASE)
_CONTEXT = re.compile(r"\b(?:" + "|".join(CONTEXT) + r")", re.IGNORECASE)
# The same words for lower-cased text, without the leading \b and IGNORECASE that make the
# scan of a whole prompt ~4x slower; context_view checks the word boundary itself.
_CONTEXT_LOWER = re.compile("|".join(CONTEXT))
_CONTEXT_WINDOW = 40
_NUMBER_TAIL = re.compile(r"[0-9 ().\-/+]*")
_GROUP_SEPARATOR = re.compile(r"[ \-]")
_YEAR = re.compile(r"(?:19|20)\d\d")
_PAIRS = re.compile(r"\d\d(?:([ .\-])\d\d)(?:\1\d\d){1,5}")
# How far around a match LocalPhoneRecognizer looks, fixed so that a view can promise it.
GUARD_MARGIN = (12, 40)
# Just before: a currency sign or "#" makes a number an amount or an id, a unit word makes its
# first group the unit's number ("Apt. 675 62314 Mellemvej" is a flat and a house number).
_AMOUNT_ID_OR_UNIT = re.compile(r"(?:[$€£¥#]|(?i:\b(?:apt|apartment|suite|ste|unit|room|flat|box)\.?))\s?$")
# "%" or a street name just after make it a share or a house number ("17151 2450 Hill Road").
_SHARE_OR_HOUSE = re.compile(
    r"%|\s+(?:[A-Z][\w'.\-]*\s+){0,2}(?:St|Street|Rd|Road|Ave|Avenue|Blvd|Boulevard|Ln|Lane|Dr"
    r"|Drive|Way|Ct|Court|Pl|Place|Sq|Square|Hwy|Highway|Rue|Via|Calle|Strasse|Straße)\b"
)


class RegexPhoneRecognizer(PatternRecognizer):
    """International (+CC), North American and grouped national numbers (3+ groups)."""

    def __init__(self) -> None:
        patterns = [
            Pattern(
                "international",
                rf"\+(?<![\w+]\+)\d{{1,3}}(?:[ .\-]?\(\d{{1,4}}\))?(?:[ .\-]?\d{{1,5}}){{1,6}}{_EXT}(?!\w)",
                SCORE,
            ),
            Pattern(
                "north american",
                rf"(?:\(\d{{3}}\)[ .\-]?|{_DIGIT}\d{{2}}[ .\-])\d{{3}}[ .\-]\d{{4}}{_EXT}{_END}",
                SCORE,
            ),
            Pattern(
                "north american trunk",
                rf"{_DIGIT}(?:0?01|1)[ .\-]\d{{3}}[ .\-]\d{{3}}[ .\-]\d{{4}}{_EXT}{_END}",
                SCORE,
            ),
            # One separator kind throughout (the backreference) keeps "2000-04-16 11" out.
            Pattern("grouped", rf"{_DIGIT}\d{{1,4}}([ .\-])\d{{2,5}}(?:\1\d{{2,5}}){{1,3}}{_END}", SCORE),
            Pattern("area code in parentheses", rf"\(\d{{1,4}}\)\s?\d{{2,5}}[ .\-]\d{{2,5}}{_END}", SCORE),
            Pattern("ten digits", rf"[2-9](?<!\w[2-9])\d{{9}}{_END}", SCORE),
        ]
        super().__init__(
            supported_entity="PHONE_NUMBER",
            name="RegexPhoneRecognizer",
            patterns=patterns,
            context=CONTEXT,
            global_regex_flags=re.MULTILINE,
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        return _plausible(pattern_text)


class LocalPhoneRecognizer(PatternRecognizer):
    """Two-group local numbers ("668 5702", "0961-7596216", "99 668472") with no phone word
    near them, unless they read as another kind of number (see ``_reads_as_other``)."""

    def __init__(self) -> None:
        # Space or hyphen only: with a dot, "3.1415926" is far likelier a decimal.
        local = rf"{_DIGIT}{_NOT_GROUP}\d{{1,4}}[ \-]\d{{4,8}}{_EXT}{_ALONE}"
        super().__init__(
            supported_entity="PHONE_NUMBER",
            name="LocalPhoneRecognizer",
            patterns=[Pattern("local", local, SCORE)],
            context=CONTEXT,
            global_regex_flags=re.MULTILINE,
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        return False if _reads_as_other(_EXTENSION.sub("", pattern_text)) else _plausible(pattern_text)

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
        regex_flags: int | None = None,
    ) -> list[RecognizerResult]:
        results = super().analyze(text, entities, nlp_artifacts, regex_flags)
        return [r for r in results if not _other_context(text, r.start, r.end)]


class ContextPhoneRecognizer(PatternRecognizer):
    """Shapes ("467.3395", "4673395", "0341 834", "33 93 31") that read as phone numbers only
    after a word such as "phone" or "call"; alone they are likelier decimals, counts or ids.
    Six digits in pairs count here (short national numbers), though nowhere else."""

    def __init__(self) -> None:
        patterns = [
            Pattern("two groups", rf"{_DIGIT}\d{{1,4}}[ .\-]\d{{3,8}}{_END}", SCORE),
            Pattern("digits", rf"{_DIGIT}\d{{6,11}}{_END}", SCORE),
            Pattern("pairs", rf"{_DIGIT}\d(?:([ .\-])\d\d)(?:\1\d\d){{1,5}}{_END}", SCORE),
        ]
        super().__init__(
            supported_entity="PHONE_NUMBER",
            name="ContextPhoneRecognizer",
            patterns=patterns,
            context=CONTEXT,
            global_regex_flags=re.MULTILINE,
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        if _PAIRS.fullmatch(pattern_text):
            return None if not _DATE.fullmatch(pattern_text) else False
        return _plausible(pattern_text)

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
        regex_flags: int | None = None,
    ) -> list[RecognizerResult]:
        if not _has_context_word(text):
            return []
        results = super().analyze(text, entities, nlp_artifacts, regex_flags)
        return [r for r in results if _CONTEXT.search(text, max(0, r.start - _CONTEXT_WINDOW), r.start)]


def context_view(text: str) -> list[tuple[int, int]]:
    """From each context word to ``_CONTEXT_WINDOW`` characters on, stretched to the end of a
    number cut there: the only places a ``ContextPhoneRecognizer`` match can be."""
    lowered = text.lower()
    if len(lowered) != len(text):  # a few letters ("İ") lower to two characters
        return [(0, len(text))] if _CONTEXT.search(text) else []
    spans = []
    for word in _CONTEXT_LOWER.finditer(lowered):
        if word.start() and lowered[word.start() - 1].isalnum():
            continue  # "recall", "hotel"
        reach = min(len(text), word.end() + _CONTEXT_WINDOW)
        spans.append((word.start(), _NUMBER_TAIL.match(text, reach).end()))  # type: ignore[union-attr]
    return spans


def _has_context_word(text: str) -> bool:
    # A substring test is ~30x cheaper than the word-bounded, case-blind regex.
    lowered = text.lower()
    return any(word in lowered for word in CONTEXT)


def _other_context(text: str, start: int, end: int) -> bool:
    before, after = GUARD_MARGIN
    amount_id_or_unit = _AMOUNT_ID_OR_UNIT.search(text, max(0, start - before), start)
    return bool(amount_id_or_unit or _SHARE_OR_HOUSE.match(text, end, end + after))


def _reads_as_other(number: str) -> bool:
    """A two-group number that is likelier a ZIP+4 ("94103-1234"), a year and a figure
    ("2019 1500", as in a table row) or a range of years, times or round numbers."""
    first, second = _GROUP_SEPARATOR.split(number, maxsplit=1)
    if number[len(first)] == " ":
        return bool(_YEAR.fullmatch(first))
    if len(first) == 5 and len(second) == 4:
        return True
    ascending = int(first) < int(second)
    return ascending and (
        all(_YEAR.fullmatch(n) for n in (first, second))
        or all(_is_hhmm(n) for n in (first, second))
        or all(n.endswith("0") for n in (first, second))
    )


def _is_hhmm(digits: str) -> bool:
    return len(digits) == 4 and int(digits[:2]) < 24 and int(digits[2:]) < 60


def _plausible(pattern_text: str) -> bool | None:
    """None (keep the pattern's score) for 7 to 15 digits that are not a date, else False.

    Never True: that would raise the score to 1.0, on a par with a verified checksum."""
    if _DATE.fullmatch(pattern_text):
        return False
    digits = sum(c.isdigit() for c in _EXTENSION.sub("", pattern_text))
    return None if 7 <= digits <= 15 else False
