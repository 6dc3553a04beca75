"""The pattern recognizers ``detect.py`` runs: Presidio's, tuned to stay offline and fast.

Part of the privacy layer under the pipeline; nothing here performs I/O or keeps state beyond
compiled patterns. Presidio's stock recognizers are used as they are where they can be
(Luhn-checked cards, US SSN with its invalidation rules, IPv4/IPv6) and adapted where they
cannot:

- email: the stock domain check goes to the network on first use (tldextract fetches the public
  suffix list); here it reads tldextract's bundled snapshot, and also accepts the internal
  domains companies use (``.corp``, ``.local``, ``.internal``, ``.lan``, ``.intranet``,
  ``.home.arpa``), which are on no public list.
- phone: the stock ``PhoneRecognizer`` runs libphonenumber's matcher once per region, about
  40 ms per 1,000 tokens; ``phone_recognizers.py`` has regexes for the common layouts instead,
  short two-group local numbers included (a miss would leak under ``local_only``).
- credit card: Presidio's pattern misses 19-digit Visa, Mastercard 2-series, JCB and short
  Maestro numbers and numbers written in dotted groups ("4111.1111.1111.1111"); more patterns,
  under the same Luhn check, cover them. Beyond the known
  ranges, any Luhn-valid 12-19 digit number standing alone is reported as a card at a lower
  score (``LuhnNumberRecognizer``): private-label cards and account numbers carry the check too.
- IBAN: Presidio's checksum and country formats, applied to the upper-cased value, so an IBAN
  written in lower case ("gb82west...") is found too.

Each recognizer comes with a *view* (see ``views.py``) that narrows the text it scans when
the detector calls it directly; an ``AnalyzerEngine`` (NER mode) runs the bare recognizers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import tldextract
from presidio_analyzer import Pattern, PatternRecognizer, RecognizerResult
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    UsSsnRecognizer,
)

from hybridgate.privacy.phone_recognizers import (
    GUARD_MARGIN,
    ContextPhoneRecognizer,
    LocalPhoneRecognizer,
    RegexPhoneRecognizer,
    context_view,
)
from hybridgate.privacy.secrets_recognizers import secret_recognizers
from hybridgate.privacy.views import (
    Margin,
    Narrowed,
    View,
    analyze_cut,
    numeric_view,
    token_view,
    window_view,
)

# The piece an email or IP address cannot do without; neither ever contains whitespace.
_EMAIL_ANCHOR = re.compile("@")
# Written to open on one character class: a leading alternation scans about 2x slower.
_IP_ANCHOR = re.compile(r"[0-9:](?:(?<=:)|\.[0-9])")
# An IBAN's check digits, after its two-letter country code; the whole IBAN, with a separator
# every four characters, ends at most 41 characters after them (Presidio's pattern).
_IBAN_ANCHOR = re.compile(r"[0-9](?<=[A-Za-z]{2}[0-9])[0-9]")
_IBAN_REACH = (2, 41)
# 12-19 digits, run together or in groups of four (the last one shorter), standing alone:
# not part of a longer number, a decimal, a word or an international phone number.
_LUHN_NUMBER = (
    r"[0-9](?<![\w+\-.][0-9])(?<![0-9][ .\-][0-9])"
    r"(?:[0-9]{11,18}|[0-9]{3}([ .\-])[0-9]{4}\1[0-9]{4}(?:\1[0-9]{4})?(?:\1[0-9]{1,3})?)"
    r"(?!\w|[ .\-][0-9])"
)
# Top-level domains of private networks: on no public suffix list, common in company e-mail.
INTERNAL_DOMAINS = (".corp", ".local", ".internal", ".lan", ".intranet", ".home.arpa")
_NOT_DIGIT = re.compile(r"[^0-9]")


@dataclass(frozen=True)
class ScopedRecognizer:
    """A recognizer and the view of a text it needs to see (None: all of it)."""

    recognizer: PatternRecognizer
    view: View | None = None
    # Characters the recognizer reads before and after a match, beyond the one a piece keeps.
    margin: Margin = (0, 0)
    # Digits a match holds at least: spans of the view with fewer are not scanned.
    min_digits: int = 0

    def analyze(
        self, text: str, entities: list[str], narrowed: Narrowed | None = None
    ) -> list[RecognizerResult]:
        """``narrowed`` (of ``text``) lets recognizers sharing a view (the numeric ones) narrow
        the text once between them."""
        if self.view is None:
            return self.recognizer.analyze(text, entities)
        pieces = (narrowed or Narrowed(text)).pieces(self.view, self.margin, self.min_digits)
        return analyze_cut(lambda part: self.recognizer.analyze(part, entities), pieces)


def pattern_recognizers() -> list[ScopedRecognizer]:
    """Fresh instances of every recognizer that needs no NLP model, each with its view."""
    return [
        ScopedRecognizer(OfflineEmailRecognizer(), token_view(_EMAIL_ANCHOR)),
        ScopedRecognizer(IpRecognizer(), token_view(_IP_ANCHOR)),
        # Cards hold 12 digits or more, phone numbers 7 or more (SSNs 9: they share the cut).
        ScopedRecognizer(CardRecognizer(), numeric_view, min_digits=12),
        ScopedRecognizer(LuhnNumberRecognizer(), numeric_view, min_digits=12),
        ScopedRecognizer(SsnRecognizer(), numeric_view, min_digits=7),
        ScopedRecognizer(RegexPhoneRecognizer(), numeric_view, min_digits=7),
        ScopedRecognizer(LocalPhoneRecognizer(), numeric_view, GUARD_MARGIN, min_digits=7),
        ScopedRecognizer(ContextPhoneRecognizer(), context_view),
        ScopedRecognizer(CaseBlindIbanRecognizer(), window_view(_IBAN_ANCHOR, _IBAN_REACH)),
        # Secret recognizers skip themselves unless their fixed marker ("sk-", "AKIA") is present.
        *(ScopedRecognizer(recognizer) for recognizer in secret_recognizers()),
    ]


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's email recognizer, with its domain check kept off the network."""

    def __init__(self) -> None:
        super().__init__()
        # No URLs and no cache dir: tldextract neither fetches nor writes, it reads its snapshot.
        self._extract = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=())

    def validate_result(self, pattern_text: str) -> bool:
        if pattern_text.lower().endswith(INTERNAL_DOMAINS):
            return True
        return bool(self._extract(pattern_text).fqdn)


class CardRecognizer(CreditCardRecognizer):
    """Presidio's Luhn-checked card recognizer, plus the layouts its pattern misses."""

    def __init__(self) -> None:
        extra = Pattern(
            "Cards Presidio misses (weak)",
            # 19-digit Visa, Mastercard 2221-2720, JCB 2131/1800, 12-19 digit Maestro. Only a
            # Luhn-valid match counts (validate_result), as for Presidio's own pattern.
            r"(?<![\w\-])(?:4\d{3}(?:[- ]?\d{4}){3}[- ]?\d{3}"
            r"|2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)(?:[- ]?\d{4}){3}"
            r"|(?:2131|1800)(?:[- ]?\d{4}){2}[- ]?\d{3}"
            r"|(?:5[0678]\d\d|6\d{3})[- ]?\d{4}[- ]?\d{4}(?:[- ]?\d{1,7})?)(?![\w\-])",
            0.3,
        )
        dotted = Pattern(
            "Cards in dotted groups (weak)",
            r"(?<![\w\-.])[1-6]\d{3}\.\d{4}\.\d{4}\.\d{1,7}(?![\w\-]|\.\d)",
            0.3,
        )
        super().__init__(
            patterns=[*CreditCardRecognizer.PATTERNS, extra, dotted],
            replacement_pairs=[("-", ""), (" ", ""), (".", "")],
        )


class LuhnNumberRecognizer(PatternRecognizer):
    """Luhn-valid 12-19 digit numbers outside the ranges ``CardRecognizer`` knows, as
    CREDIT_CARD: private-label and new-range cards, and account numbers that carry the check.

    Scored 0.5, under a known card or a valid IBAN (1.0): where one covers the same digits,
    ``detect.py`` reports it instead. About one random long number in ten passes the check;
    such a false finding keeps a request local or redacts the number, which is the safe side.
    """

    def __init__(self) -> None:
        super().__init__(
            supported_entity="CREDIT_CARD",
            name="LuhnNumberRecognizer",
            patterns=[Pattern("Luhn-valid number", _LUHN_NUMBER, 0.5)],
            context=CreditCardRecognizer.CONTEXT,
            global_regex_flags=re.MULTILINE,
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        # None keeps the pattern's score; True would raise it to a verified card's 1.0.
        digits = _NOT_DIGIT.sub("", pattern_text)
        return None if luhn_valid(digits) and len(set(digits)) > 1 else False


def luhn_valid(digits: str) -> bool:
    """The Luhn check: from the right, every second digit doubled (less 9 when over 9)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


class CaseBlindIbanRecognizer(IbanRecognizer):
    """Presidio's IBAN recognizer, checksum and country formats included, in any letter case:
    "gb82west..." is the same account as "GB82WEST...". ASCII only, as IBANs are."""

    def __init__(self) -> None:
        patterns = [Pattern(p.name, "(?ai)" + p.regex, p.score) for p in IbanRecognizer.PATTERNS]
        super().__init__(patterns=patterns)  # type: ignore[arg-type]

    def validate_result(self, pattern_text: str) -> bool | None:
        # The checksum and the country formats are defined over upper case.
        return super().validate_result(pattern_text.upper())  # type: ignore[no-any-return]


class SsnRecognizer(UsSsnRecognizer):
    """Presidio's US SSN recognizer and its invalidation rules, with only the 0.5 pattern.

    The other four score 0.05 and only context words could lift them over a threshold; pattern
    mode has no NLP engine to find context, so they would cost time and never count.
    """

    def __init__(self) -> None:
        super().__init__(patterns=[p for p in UsSsnRecognizer.PATTERNS if p.score >= 0.5])
