"""Benchmark the PII detector: scan latency on ~1,000-token prompts, and accuracy per entity type.

Offline tool, never imported by the gateway. Reads a Presidio-style synthetic data set (records
with ``full_text`` and gold ``spans``) in place, read-only, and prints one JSON object.

    .venv/bin/python bench/pii_latency.py [--data PATH] [--rounds N]

Latency: consecutive records are joined until a prompt reaches ``--tokens`` tokens, counted
as 4 characters per token (the usual English average for BPE tokenizers); each prompt is scanned
``--rounds`` times after a warm-up. Accuracy: every record is scanned alone; a finding counts
as a true positive when it overlaps a gold span of the same type. ``redaction_recall`` counts a
gold span as covered when any finding overlaps it, whatever its type: that is what redaction
needs (a card number flagged as a phone number is still replaced).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from hybridgate.privacy.detect import PiiDetector, Span

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pii" / "synth_dataset_v2.json"
CHARS_PER_TOKEN = 4
# The data set labels places GPE; Presidio's spaCy mapping calls them LOCATION.
GOLD_TO_DETECTOR = {"GPE": "LOCATION"}

Record = dict[str, Any]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    records: list[Record] = json.loads(args.data.read_text(encoding="utf-8"))
    started = time.perf_counter()
    detector = PiiDetector()
    build_ms = (time.perf_counter() - started) * 1000
    report = {
        "data": str(args.data),
        "records": len(records),
        "detector_build_ms": round(build_ms, 1),
        "coverage": detector.coverage(),
        "latency": latency(detector, prompts(records, args.tokens * CHARS_PER_TOKEN), args.rounds),
        "accuracy": accuracy(detector, records),
    }
    print(json.dumps(report, indent=2))


def prompts(records: list[Record], chars: int) -> list[str]:
    built: list[str] = []
    current: list[str] = []
    for record in records:
        current.append(record["full_text"])
        if sum(len(text) + 1 for text in current) >= chars:
            built.append("\n".join(current))
            current = []
    return built


def latency(detector: PiiDetector, texts: list[str], rounds: int) -> dict[str, Any]:
    for text in texts[:5]:
        detector.scan([text])
    wall: list[float] = []
    cpu: list[float] = []
    gc.collect()
    for _ in range(rounds):
        for text in texts:
            started, started_cpu = time.perf_counter(), time.thread_time()
            detector.scan([text])
            cpu.append((time.thread_time() - started_cpu) * 1000)
            wall.append((time.perf_counter() - started) * 1000)
    return {
        "prompts": len(texts),
        "mean_chars": round(statistics.mean(len(t) for t in texts)),
        "approx_tokens": round(statistics.mean(len(t) for t in texts) / CHARS_PER_TOKEN),
        "samples": len(wall),
        # Wall time is what a request waits; CPU time is less disturbed by other processes.
        "wall_ms": summary(wall),
        "cpu_ms": summary(cpu),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": round(percentile(ordered, 50), 3),
        "p90": round(percentile(ordered, 90), 3),
        "p99": round(percentile(ordered, 99), 3),
        "max": round(ordered[-1], 3),
    }


def percentile(sorted_samples: list[float], pct: float) -> float:
    index = min(len(sorted_samples) - 1, round(pct / 100 * (len(sorted_samples) - 1)))
    return sorted_samples[index]


def accuracy(detector: PiiDetector, records: list[Record]) -> dict[str, Any]:
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    gold_total: Counter[str] = Counter()
    gold_found: Counter[str] = Counter()
    gold_redacted: Counter[str] = Counter()
    for record in records:
        found = detector.scan_text(record["full_text"])
        gold = [(GOLD_TO_DETECTOR.get(s["entity_type"], s["entity_type"]), s) for s in record["spans"]]
        for span in found:
            same = [g for kind, g in gold if kind == span.entity_type and overlaps(span, g)]
            (tp if same else fp)[span.entity_type] += 1
        for kind, g in gold:
            gold_total[kind] += 1
            gold_found[kind] += any(s.entity_type == kind and overlaps(s, g) for s in found)
            gold_redacted[kind] += any(overlaps(s, g) for s in found)
    covered = set(detector.coverage()["entities"])
    per_type = {
        kind: scores(tp[kind], fp[kind], gold_total[kind], gold_found[kind], gold_redacted[kind])
        for kind in sorted(covered & (set(gold_total) | set(tp) | set(fp)))
    }
    return {
        "match": "overlap, same type",
        "per_type": per_type,
        "micro": micro(per_type),
        "not_covered_gold": {k: v for k, v in sorted(gold_total.items()) if k not in covered},
        "not_covered_redaction_recall": {
            k: round(gold_redacted[k] / v, 3) for k, v in sorted(gold_total.items()) if k not in covered
        },
    }


def overlaps(span: Span, gold: Record) -> bool:
    return span.start < int(gold["end_position"]) and int(gold["start_position"]) < span.end


def scores(tp: int, fp: int, support: int, found: int, redacted: int) -> dict[str, Any]:
    return {
        "support": support,
        "true_positives": tp,
        "false_positives": fp,
        "gold_found": found,
        "precision": round(tp / (tp + fp), 3) if tp + fp else None,
        "recall": round(found / support, 3) if support else None,
        "redaction_recall": round(redacted / support, 3) if support else None,
    }


def micro(per_type: dict[str, dict[str, Any]]) -> dict[str, Any]:
    correct = sum(v["true_positives"] for v in per_type.values())
    predicted = correct + sum(v["false_positives"] for v in per_type.values())
    support = sum(v["support"] for v in per_type.values())
    found = sum(v["gold_found"] for v in per_type.values())
    return {
        "precision": round(correct / predicted, 3) if predicted else None,
        "recall": round(found / support, 3) if support else None,
    }


if __name__ == "__main__":
    main()
