"""The pattern recognizers ``detect.py`` runs: Presidio's, tuned to stay offline and fast.

Part of the privacy layer under the pipeline; nothing here performs I/O or keeps state beyond
compiled patterns. Presidio's stock recognizers are used as they are where they can be
(Luhn-checked cards, US SSN with its invalidation rules, IBAN with its checksum, IPv4/IPv6)
and adapted where they cannot:

- email: the stock domain check goes to the network on first use (tldextract fetches the public
  suffix list); here it reads tldextract's bundled snapshot.
- phone: the stock ``PhoneRecognizer`` runs libphonenumber's matcher once per region, about
  40 ms per 1,000 tokens; ``phone_recognizers.py`` has regexes for the common layouts instead.
- credit card: Presidio's pattern misses 19-digit Visa, Mastercard 2-series, JCB and short
  Maestro numbers; one more pattern, under the same Luhn check, covers them.

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

from hybridgate.privacy.phone_recognizers import ContextPhoneRecognizer, RegexPhoneRecognizer, context_view
from hybridgate.privacy.secrets_recognizers import secret_recognizers
from hybridgate.privacy.views import Spans, View, analyze_pieces, numeric_view, token_view

# The piece an email or IP address cannot do without; neither ever contains whitespace.
_EMAIL_ANCHOR = re.compile("@")
# Written to open on one character class: a leading alternation scans about 2x slower.
_IP_ANCHOR = re.compile(r"[0-9:](?:(?<=:)|\.[0-9])")


@dataclass(frozen=True)
class ScopedRecognizer:
    """A recognizer and the view of a text it needs to see (None: all of it)."""

    recognizer: PatternRecognizer
    view: View | None = None

    def analyze(self, text: str, entities: list[str], seen: dict[View, Spans]) -> list[RecognizerResult]:
        """``seen`` keeps each view's spans for this text: recognizers sharing a view (the
        numeric ones) narrow the text once between them."""
        if self.view is None:
            return self.recognizer.analyze(text, entities)
        if self.view not in seen:
            seen[self.view] = self.view(text)
        return analyze_pieces(lambda part: self.recognizer.analyze(part, entities), text, seen[self.view])


def pattern_recognizers() -> list[ScopedRecognizer]:
    """Fresh instances of every recognizer that needs no NLP model, each with its view."""
    return [
        ScopedRecognizer(OfflineEmailRecognizer(), token_view(_EMAIL_ANCHOR)),
        ScopedRecognizer(IpRecognizer(), token_view(_IP_ANCHOR)),
        ScopedRecognizer(CardRecognizer(), numeric_view),
        ScopedRecognizer(SsnRecognizer(), numeric_view),
        ScopedRecognizer(RegexPhoneRecognizer(), numeric_view),
        ScopedRecognizer(ContextPhoneRecognizer(), context_view),
        ScopedRecognizer(IbanRecognizer()),
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
        super().__init__(patterns=[*CreditCardRecognizer.PATTERNS, extra])


class SsnRecognizer(UsSsnRecognizer):
    """Presidio's US SSN recognizer and its invalidation rules, with only the 0.5 pattern.

    The other four score 0.05 and only context words could lift them over a threshold; pattern
    mode has no NLP engine to find context, so they would cost time and never count.
    """

    def __init__(self) -> None:
        super().__init__(patterns=[p for p in UsSsnRecognizer.PATTERNS if p.score >= 0.5])
