"""Benchmark the shipped privacy path: leaks under ``local_only``, accuracy per type, latency.

Offline tool behind ``hybridgate bench pii``; never imported by the gateway. Reads a
Presidio-style synthetic data set (records with ``full_text`` and gold ``spans``), read-only,
from the path it is given, and returns one JSON-ready dict. Nothing here opens a socket.

Every record goes through ``PrivacyGuard.screen`` as a one-message request on a route that
tries a local and a cloud backend, under ``local_only``: a record *leaks* when the screened
decision still lets a cloud backend see it (the guard found nothing, so nothing kept it local).
``leaks`` counts leaked records with a gold span of a structured type, ``leaks_any`` those with
a gold span of any type. The spans the guard found give precision and recall per type: a
finding is a true positive when it overlaps a gold span of the same type; ``redaction_recall``
counts a gold span as covered when any finding overlaps it, whatever its type (a card number
flagged as a phone number is still replaced). Latency: consecutive records are joined into
prompts of ``tokens`` tokens (4 characters per token, the usual English average for BPE
tokenizers) and each is screened ``rounds`` times after a warm-up.

Before and after, in the same run: ``before_normalisation`` screens the data set again with the
detector's Unicode normalisation off (precision and recall must not fall with it on);
``unicode_variants`` rewrites every record's structured values as people and tools write them
(non-breaking and narrow non-breaking spaces, fullwidth digits; same length, so gold offsets hold)
and counts leaks with normalisation off and on; ``normalise_cpu_*`` is the normalisation's own
CPU time per latency prompt.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybridgate.config import PrivacyConfig
from hybridgate.privacy.detect import Span
from hybridgate.privacy.normalise import normalise
from hybridgate.privacy.policy import PrivacyGuard
from hybridgate.types import ChatRequest, Decision, Message, RequestContext

STRUCTURED = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS")
CHARS_PER_TOKEN = 4
# The data set labels places GPE; Presidio's spaCy mapping calls them LOCATION.
GOLD_TO_DETECTOR = {"GPE": "LOCATION"}
LOCAL, CLOUD = "local", "cloud"
DECISION = Decision(route="bench", backends=(LOCAL, CLOUD), rule="bench")

Record = dict[str, Any]
GoldSpan = tuple[str, int, int]  # detector-named type, start, end


@dataclass
class Tally:
    """Counts gathered over the data set, turned into the report by ``accuracy``."""

    texts: int = 0
    leaks: int = 0
    leaks_any: int = 0
    leak_indices: list[int] = field(default_factory=list)
    tp: Counter[str] = field(default_factory=Counter)
    fp: Counter[str] = field(default_factory=Counter)
    gold: Counter[str] = field(default_factory=Counter)
    found: Counter[str] = field(default_factory=Counter)
    redacted: Counter[str] = field(default_factory=Counter)


def bench_pii(data: Path, *, rounds: int, tokens: int, ner_model: str | None = None) -> dict[str, Any]:
    """Screen every record of ``data`` and time ``tokens``-token prompts ``rounds`` times each.

    ``ner_model`` is passed to the guard as ``[privacy] ner_model`` is: None for patterns only,
    ``"auto"`` for the first installed ``en_core_web_*`` pipeline, or a pipeline name or path.
    """
    if rounds < 1 or tokens < 1:
        raise ValueError(f"rounds and tokens must be at least 1 (got {rounds}, {tokens})")
    records = load_records(data)
    started = time.perf_counter()
    guard = PrivacyGuard(PrivacyConfig(policy="local_only", ner_model=ner_model), [LOCAL])
    build_ms = (time.perf_counter() - started) * 1000
    tally = screen_records(guard, records)
    texts = prompts(records, tokens * CHARS_PER_TOKEN)
    timing = latency(guard, texts, rounds)
    plain = PrivacyGuard(
        PrivacyConfig(policy="local_only", ner_model=ner_model), [LOCAL], normalise_text=False
    )
    before = screen_records(plain, records)
    variants = unicode_variants(records)
    return {
        "data": str(data),
        "texts": tally.texts,
        "ner_model_requested": ner_model,
        "coverage": guard.coverage(),
        "guard_build_ms": round(build_ms, 1),
        "leaks": tally.leaks,
        "leaks_any": tally.leaks_any,
        "leak_indices": tally.leak_indices,
        **accuracy(tally),
        **timing,
        **normalise_cost(texts, rounds),
        "before_normalisation": {"leaks": before.leaks, "leaks_any": before.leaks_any, **accuracy(before)},
        "unicode_variants": {
            "texts": len(variants),
            "rewrites": "spaces in structured values -> U+00A0 / U+202F alternately, digits -> fullwidth",
            "leaks_before": screen_records(plain, variants).leaks,
            "leaks_after": screen_records(guard, variants).leaks,
            "recall_after": accuracy(screen_records(guard, variants))["recall"],
        },
    }


_FULLWIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))


def unicode_variants(records: list[Record]) -> list[Record]:
    """The records with a structured gold value, its spaces made non-breaking (U+00A0 and
    U+202F alternately) and, in every other record, its digits fullwidth. Lengths are kept."""
    out: list[Record] = []
    for record in records:
        spans = [s for s in record["spans"] if s["entity_type"] in STRUCTURED]
        if not spans:
            continue
        text = record["full_text"]
        for span in spans:
            start, end = int(span["start_position"]), int(span["end_position"])
            value = text[start:end]
            if len(out) % 2:
                value = value.translate(_FULLWIDTH)
            value = "".join("\u00a0\u202f"[i % 2] if c == " " else c for i, c in enumerate(value))
            text = text[:start] + value + text[end:]
        out.append({**record, "full_text": text})
    return out


def normalise_cost(texts: list[str], rounds: int) -> dict[str, Any]:
    """CPU time of ``normalise`` alone per prompt, p50 and p99 over ``rounds`` passes."""
    cpu: list[float] = []
    for _ in range(rounds):
        for text in texts:
            started = time.thread_time()
            normalise(text)
            cpu.append((time.thread_time() - started) * 1000)
    return {"normalise_cpu_p50_ms": percentile(cpu, 50), "normalise_cpu_p99_ms": percentile(cpu, 99)}


def load_records(data: Path) -> list[Record]:
    records = json.loads(data.read_text(encoding="utf-8"))
    if not isinstance(records, list) or not all(_is_record(r) for r in records):
        raise ValueError(f"{data}: expected a JSON list of records with 'full_text' and 'spans'")
    return records


def _is_record(record: Any) -> bool:
    return isinstance(record, dict) and isinstance(record.get("full_text"), str) and "spans" in record


def screen(guard: PrivacyGuard, text: str) -> tuple[bool, tuple[Span, ...]]:
    """Whether ``text`` would reach the cloud backend under ``local_only``, and the spans found."""
    request = ChatRequest(model="bench", messages=[Message(role="user", content=text)])
    screening = guard.screen(request, RequestContext(request_id="bench"), DECISION)
    spans = screening.findings.spans[0] if screening.findings else ()
    return CLOUD in screening.decision.backends, spans


def screen_records(guard: PrivacyGuard, records: list[Record]) -> Tally:
    tally = Tally()
    for index, record in enumerate(records):
        reached_cloud, found = screen(guard, record["full_text"])
        gold = gold_spans(record)
        tally.texts += 1
        if reached_cloud and any(kind in STRUCTURED for kind, _, _ in gold):
            tally.leaks += 1
            tally.leak_indices.append(index)
        tally.leaks_any += reached_cloud and bool(gold)
        count_matches(tally, found, gold)
    return tally


def gold_spans(record: Record) -> list[GoldSpan]:
    return [
        (
            GOLD_TO_DETECTOR.get(span["entity_type"], span["entity_type"]),
            int(span["start_position"]),
            int(span["end_position"]),
        )
        for span in record["spans"]
    ]


def count_matches(tally: Tally, found: tuple[Span, ...], gold: list[GoldSpan]) -> None:
    for span in found:
        same = any(g[0] == span.entity_type and overlaps(span, g) for g in gold)
        (tally.tp if same else tally.fp)[span.entity_type] += 1
    for g in gold:
        kind = g[0]
        tally.gold[kind] += 1
        tally.found[kind] += any(s.entity_type == kind and overlaps(s, g) for s in found)
        tally.redacted[kind] += any(overlaps(s, g) for s in found)


def overlaps(span: Span, gold: GoldSpan) -> bool:
    return span.start < gold[2] and gold[1] < span.end


def accuracy(tally: Tally) -> dict[str, Any]:
    """Precision per type the guard reported, recall per gold type (0.0 when not covered)."""
    predicted = sorted(set(tally.tp) | set(tally.fp))
    gold = sorted(tally.gold)
    return {
        "match": "overlap, same type",
        "precision": {k: _ratio(tally.tp[k], tally.tp[k] + tally.fp[k]) for k in predicted},
        "recall": {k: _ratio(tally.found[k], tally.gold[k]) for k in gold},
        "redaction_recall": {k: _ratio(tally.redacted[k], tally.gold[k]) for k in gold},
        "support": {k: tally.gold[k] for k in gold},
        "false_positives": {k: tally.fp[k] for k in predicted if tally.fp[k]},
    }


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def prompts(records: list[Record], chars: int) -> list[str]:
    """Consecutive records joined until each prompt holds at least ``chars`` characters."""
    built: list[str] = []
    current: list[str] = []
    size = 0
    for record in records:
        current.append(record["full_text"])
        size += len(record["full_text"]) + 1
        if size >= chars:
            built.append("\n".join(current))
            current, size = [], 0
    return built or ["\n".join(current)]


def latency(guard: PrivacyGuard, texts: list[str], rounds: int) -> dict[str, Any]:
    for text in texts[:5]:
        screen(guard, text)
    wall: list[float] = []
    cpu: list[float] = []
    gc.collect()
    for _ in range(rounds):
        for text in texts:
            started, started_cpu = time.perf_counter(), time.thread_time()
            screen(guard, text)
            cpu.append((time.thread_time() - started_cpu) * 1000)
            wall.append((time.perf_counter() - started) * 1000)
    mean_chars = statistics.mean(len(t) for t in texts)
    return {
        "latency_p50_ms": percentile(wall, 50),
        "latency_p99_ms": percentile(wall, 99),
        # Wall time is what a request waits; CPU time is less disturbed by other processes.
        "latency_cpu_p50_ms": percentile(cpu, 50),
        "latency_cpu_p99_ms": percentile(cpu, 99),
        "latency_max_ms": round(max(wall), 3),
        "latency_prompts": len(texts),
        "latency_samples": len(wall),
        "latency_prompt_tokens": round(mean_chars / CHARS_PER_TOKEN),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile of ``samples`` (need not be sorted), rounded to microseconds."""
    ordered = sorted(samples)
    index = min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))
    return round(ordered[index], 3)
