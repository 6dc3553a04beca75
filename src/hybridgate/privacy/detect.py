"""Find PII and secrets in request text with Presidio, without touching the network.

Sits beside the router: the pipeline scans a request's texts before deciding where it may go,
and ``redact.py`` replaces the spans found here. Findings carry entity types, offsets and
scores, never the matched values, so they are safe to put in a decision record or a log.

Two modes. With no spaCy pipeline installed, the pattern recognizers (Presidio's, with their
checksums, and ours for phones and secrets; see ``recognizers.py``) are called directly, each
over the parts of the text it could match: no NLP engine (Presidio's default would try to
download a spaCy model) and 1-2 ms of CPU per 1,000-token prompt (``bench/pii_latency.py``).
When a spaCy pipeline is installed or named, an ``AnalyzerEngine`` runs the same recognizers
plus ``SpacyRecognizer`` for names, places and organisations, at the pipeline's speed.

Either way the text is normalised first (``normalise.py``: NFKC, every kind of space, zero-width
characters) and the spans found are mapped back to the text as written."""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import spacy.util
from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerRegistry, RecognizerResult
from presidio_analyzer.nlp_engine import SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import SpacyRecognizer

from hybridgate.errors import ConfigError
from hybridgate.privacy.normalise import normalise
from hybridgate.privacy.recognizers import pattern_recognizers
from hybridgate.privacy.secrets_recognizers import SECRET_ENTITIES
from hybridgate.privacy.views import Narrowed

PATTERN_ENTITIES = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "US_SSN",
    "IBAN_CODE",
    "IP_ADDRESS",
    *SECRET_ENTITIES,
)
NER_ENTITIES = ("PERSON", "LOCATION", "ORGANIZATION", "NRP")
# Off unless asked for in ``entities``: redacting every date and weekday costs answers their
# meaning for little privacy gain.
NER_OPTIONAL = ("DATE_TIME",)
NER_MODELS = ("en_core_web_lg", "en_core_web_md", "en_core_web_sm", "en_core_web_trf")
AUTO = "auto"
# Without NER, nothing shorter can hold a finding: the shortest is an email like "a@b.co".
# Skipping such texts matters for tool-call arguments, scanned one JSON value at a time.
_MIN_PATTERN_CHARS = 6


@dataclass(frozen=True)
class Span:
    """One finding in one text: ``text[start:end]`` is the entity. The value is not kept."""

    entity_type: str
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class Findings:
    """What a scan found: ``spans[i]`` belongs to ``texts[i]``, sorted, never overlapping."""

    spans: tuple[tuple[Span, ...], ...]

    @property
    def counts(self) -> dict[str, int]:
        """Findings per entity type, sorted by type: what a decision record may show."""
        counter = Counter(span.entity_type for spans in self.spans for span in spans)
        return dict(sorted(counter.items()))

    @property
    def total(self) -> int:
        return sum(len(spans) for spans in self.spans)

    def __bool__(self) -> bool:
        return any(self.spans)

    def summary(self) -> str:
        """``EMAIL_ADDRESS=2,US_SSN=1``, or ``""`` when nothing was found."""
        return ",".join(f"{name}={count}" for name, count in self.counts.items())


class PiiDetector:
    """Scans texts for the configured entity types. Build once at start-up; ``scan`` is pure."""

    def __init__(
        self,
        entities: Collection[str] | None = None,
        *,
        ner_model: str | None = AUTO,
        score_threshold: float = 0.4,
        normalise_text: bool = True,
    ) -> None:
        """``ner_model``: ``"auto"`` uses the first installed ``en_core_web_*`` pipeline,
        a package name or a directory path uses that one, ``None`` turns NER off."""
        self._ner_model = _resolve_ner_model(ner_model)
        default = PATTERN_ENTITIES + (NER_ENTITIES if self._ner_model else ())
        self._entities = tuple(entities) if entities is not None else default
        if unknown := sorted(set(self._entities) - {*PATTERN_ENTITIES, *NER_ENTITIES, *NER_OPTIONAL}):
            known = ", ".join((*PATTERN_ENTITIES, *NER_ENTITIES, *NER_OPTIONAL))
            raise ConfigError(f"unknown PII entity types {unknown}; known: {known}")
        self._threshold = score_threshold
        self._normalise = normalise_text  # off only to measure what normalising adds (bench pii)
        self._min_chars = 1 if self._ner_model else _MIN_PATTERN_CHARS
        self._recognizers = pattern_recognizers()
        self._engine = None
        if self._ner_model:
            bare = [scoped.recognizer for scoped in self._recognizers]
            ner = [e for e in self._entities if e not in PATTERN_ENTITIES]
            self._engine = _ner_engine(self._ner_model, bare, ner)

    @property
    def entities(self) -> tuple[str, ...]:
        return self._entities

    def scan(self, texts: Sequence[str]) -> Findings:
        return Findings(tuple(self.scan_text(text) for text in texts))

    def scan_text(self, text: str) -> tuple[Span, ...]:
        if len(text) < self._min_chars:
            return ()
        if not self._normalise:
            return self._spans(self._analyze(text))
        normalised = normalise(text)
        results = self._analyze(normalised.text)
        if normalised.origins is not None:
            for result in results:
                result.start, result.end = normalised.span(result.start, result.end)
        return self._spans(results)

    def _spans(self, results: list[RecognizerResult]) -> tuple[Span, ...]:
        return _non_overlapping(
            r for r in results if r.score >= self._threshold and r.entity_type in self._entities
        )

    def coverage(self) -> dict[str, Any]:
        """What this detector can and cannot see, for the start-up log, /healthz and docs."""
        covered = [e for e in self._entities if e in PATTERN_ENTITIES or self._ner_model]
        wanted = (*NER_ENTITIES, *self._entities)
        missing = [] if self._ner_model else list(dict.fromkeys(e for e in wanted if e not in covered))
        return {
            "engine": f"presidio-analyzer {version('presidio-analyzer')}",
            "mode": "patterns+ner" if self._ner_model else "patterns",
            "ner_model": self._ner_model,
            "entities": sorted(covered),
            "not_covered": missing,
            "note": _coverage_note(self._ner_model, missing),
        }

    def _analyze(self, text: str) -> list[RecognizerResult]:
        if self._engine is not None:
            return list(self._engine.analyze(text=text, language="en", entities=list(self._entities)))
        results: list[RecognizerResult] = []
        narrowed = Narrowed(text)
        for scoped in self._recognizers:
            wanted = [e for e in scoped.recognizer.supported_entities if e in self._entities]
            if wanted:
                results.extend(scoped.analyze(text, wanted, narrowed))
        return results


def _ner_engine(model: str, recognizers: Sequence[EntityRecognizer], entities: list[str]) -> AnalyzerEngine:
    if not (spacy.util.is_package(model) or Path(model).exists()):
        # SpacyNlpEngine would try to download a missing model; there may be no network.
        raise ConfigError(f"spaCy pipeline {model!r} is not installed; install it or set ner_model to None")
    registry = RecognizerRegistry([*recognizers, SpacyRecognizer(supported_entities=entities)])
    nlp_engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": model}])
    return AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=["en"])


def _resolve_ner_model(ner_model: str | None) -> str | None:
    if ner_model != AUTO:
        return ner_model
    return next((name for name in NER_MODELS if spacy.util.is_package(name)), None)


def _non_overlapping(results: Iterable[RecognizerResult]) -> tuple[Span, ...]:
    """Keep the strongest of overlapping findings (then the longest), so each character is
    redacted once and counted once: a Luhn-valid card beats the phone number inside it.

    A pattern finding beats any NER finding it overlaps, whatever the scores: spaCy tags bits
    of numbers as names ("+1-984" as NRP in "+1-984-182-0190"), and letting such a part win
    would leave the rest of the number unredacted."""
    starts: list[int] = []  # of kept spans, sorted; kept spans never overlap, so ends are too
    kept: list[Span] = []
    order = sorted(
        results, key=lambda r: (r.entity_type not in PATTERN_ENTITIES, -r.score, r.start - r.end, r.start)
    )
    for r in order:
        at = bisect_right(starts, r.start)
        if (at and kept[at - 1].end > r.start) or (at < len(kept) and kept[at].start < r.end):
            continue
        starts.insert(at, r.start)
        kept.insert(at, Span(r.entity_type, r.start, r.end, round(float(r.score), 3)))
    return tuple(kept)


def _coverage_note(ner_model: str | None, missing: list[str]) -> str:
    if ner_model:
        return (
            f"names, places and organisations come from spaCy pipeline {ner_model!r}; "
            "street addresses are covered only as far as it tags their place names"
        )
    return (
        f"no spaCy pipeline installed: {', '.join(missing)} (names, addresses, organisations) "
        "are NOT detected; install e.g. en_core_web_sm to cover them"
    )
