"""``hybridgate bench cache``: the semantic cache on labelled question pairs, and lookup latency.

Quality: each pair ``{text_a, text_b, label}`` (label 1 = same question) is one cache lookup:
``text_a`` is cached, ``text_b`` arrives, and the matcher says hit or miss. Precision = share of
hits that are duplicates; recall = share of duplicates that hit; ``false_hit_rate`` = share of
non-duplicate pairs that hit (a wrong answer served). The pairs are split once, by a seeded
permutation of the whole file, into a tuning half (the guards and the default threshold were
chosen on it) and a held-out half, on which every number is reported; ``--limit`` takes the first
pairs of each half. ``reference`` is plain cosine similarity without guards, same pairs, same run.

Latency: a ``VectorIndex`` filled with ``entries`` vectors in one scope (the data's embeddings;
if there are fewer, noisy copies of them, flagged ``synthetic_fill``), then ``queries`` lookups
(search k=4, then the matcher on the candidates), wall and CPU time. Also the ``embed`` time.
Offline: no gateway, no network.
"""

from __future__ import annotations

import gzip
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hybridgate.cache.guards import difference, surface
from hybridgate.cache.semantic import SemanticMatcher
from hybridgate.cache.vectors import VectorIndex
from hybridgate_bench.cache_stores import store_latency

SEED = 0
CURVE = [round(0.80 + 0.01 * i, 2) for i in range(20)]
TARGET_RECALL = 0.20

Pairs = tuple[list[str], list[str], NDArray[np.int8]]


def load_pairs(path: Path) -> Pairs:
    """The pairs of a JSON-lines file (gzip if the name ends in .gz)."""
    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    a: list[str] = []
    b: list[str] = []
    labels: list[int] = []
    with opener(path, "rt", encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                a.append(str(row["text_a"]))
                b.append(str(row["text_b"]))
                labels.append(int(row["label"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: not a {{text_a, text_b, label}} pair ({exc})") from exc
    if not labels:
        raise ValueError(f"{path} holds no pairs")
    return a, b, np.asarray(labels, dtype=np.int8)


def split(n: int, limit: int | None) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """(tuning, held-out) row indices: halves of a seeded permutation, each cut to limit/2."""
    order = np.random.default_rng(SEED).permutation(n)
    tune, held_out = order[: n // 2], order[n // 2 :]
    if limit is not None:
        tune, held_out = tune[: limit // 2], held_out[: limit - limit // 2]
    return tune, held_out


def scores(
    matcher: SemanticMatcher, a: list[str], b: list[str]
) -> tuple[NDArray[np.float32], list[str | None]]:
    """Cosine similarity of each pair, and the guard each pair trips (None: passes)."""
    sims = (matcher.embed_many(a) * matcher.embed_many(b)).sum(axis=1)
    return sims, [difference(surface(x), surface(y)) for x, y in zip(a, b, strict=True)]


def operating_point(hits: NDArray[np.bool_], labels: NDArray[np.int8]) -> dict[str, float]:
    """Precision, recall and false-hit rate of a hit/miss decision per pair."""
    duplicates = labels == 1
    true_hits = int((hits & duplicates).sum())
    return {
        "precision": round(true_hits / max(int(hits.sum()), 1), 4),
        "recall": round(true_hits / max(int(duplicates.sum()), 1), 4),
        "false_hit_rate": round(int((hits & ~duplicates).sum()) / max(int((~duplicates).sum()), 1), 4),
    }


def curve(
    sims: NDArray[np.float32], passed: NDArray[np.bool_], labels: NDArray[np.int8]
) -> list[list[float]]:
    """[[threshold, precision, recall], ...] over ``CURVE``."""
    rows = []
    for t in CURVE:
        point = operating_point((sims >= t) & passed, labels)
        rows.append([t, point["precision"], point["recall"]])
    return rows


def tuned_threshold(rows: list[list[float]]) -> float:
    """The highest curve threshold whose recall still reaches ``TARGET_RECALL``."""
    eligible = [t for t, _, r in rows if r >= TARGET_RECALL]
    return max(eligible) if eligible else CURVE[0]


def quality(matcher: SemanticMatcher, pairs: Pairs, limit: int | None) -> dict[str, Any]:
    """Every number on the whole file (the first ``limit`` pairs of it); ``held_out`` repeats the
    operating point on the half of the file the guards and the threshold were not chosen on."""
    a, b, labels = pairs
    n = len(labels) if limit is None else min(limit, len(labels))
    a, b, labels = a[:n], b[:n], labels[:n]
    sims, reasons = scores(matcher, a, b)
    passed = np.array([r is None for r in reasons])
    hits = (sims >= matcher.threshold) & passed
    tune, held = (half[half < n] for half in split(len(pairs[2]), None))
    above = sims >= matcher.threshold
    return {
        "pairs": n,
        "threshold": matcher.threshold,
        **operating_point(hits, labels),
        "curve": curve(sims, passed, labels),
        "tuned_threshold": (
            tuned_threshold(curve(sims[tune], passed[tune], labels[tune])) if len(tune) else None
        ),
        "held_out": {"pairs": len(held), **operating_point(hits[held], labels[held])},
        "rejected_by_guard": dict(Counter(r for r, up in zip(reasons, above, strict=True) if up and r)),
        "reference": {
            "method": "plain cosine, no guards",
            **operating_point(sims >= matcher.threshold, labels),
            "curve": curve(sims, np.ones(n, dtype=bool), labels),
        },
    }


def hard_negatives(matcher: SemanticMatcher, path: Path) -> dict[str, Any]:
    """False hits per category of near misses (label 0) and recall on the paraphrases (label 1)
    of a ``{text_a, text_b, label, category}`` file such as tests/cache/data/hard_negatives.jsonl."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    sims, reasons = scores(matcher, [r["text_a"] for r in rows], [r["text_b"] for r in rows])
    hit = [bool(s >= matcher.threshold) and reason is None for s, reason in zip(sims, reasons, strict=True)]
    by: dict[str, list[bool]] = {}
    for row, was_hit in zip(rows, hit, strict=True):
        by.setdefault(str(row.get("category", "uncategorised")), []).append(was_hit)
    negatives = [h for row, h in zip(rows, hit, strict=True) if int(row["label"]) == 0]
    positives = [h for row, h in zip(rows, hit, strict=True) if int(row["label"]) == 1]
    labels = [int(row["label"]) for row in rows]
    plain = [bool(s >= matcher.threshold) for label, s in zip(labels, sims, strict=True) if label == 0]
    return {
        "pairs": len(rows),
        "threshold": matcher.threshold,
        "false_hit_rate": round(sum(negatives) / max(len(negatives), 1), 4),
        "false_hit_rate_plain_cosine": round(sum(plain) / max(len(plain), 1), 4),
        "paraphrase_recall": round(sum(positives) / max(len(positives), 1), 4),
        "by_category": {
            name: {"pairs": len(hits), "hits": sum(hits), "rate": round(sum(hits) / len(hits), 4)}
            for name, hits in sorted(by.items())
        },
    }


def latency(
    matcher: SemanticMatcher, pairs: Pairs, entries: int, queries: int, redis_url: str | None = None
) -> dict[str, Any]:
    a, b, _ = pairs
    texts = a + b
    vectors = matcher.embed_many(texts[: entries + queries])
    fill = _fill(vectors, entries + queries)
    index = VectorIndex(max_entries=entries, dim=matcher.dim)
    for row in range(entries):
        index.add("scope", str(row), fill[row], texts[row % len(texts)])
    wall: list[float] = []
    cpu: list[float] = []
    for row in range(entries, entries + queries):
        query = texts[row % len(texts)]
        w0, c0 = time.perf_counter(), time.thread_time()
        for _key, similarity, text in index.search("scope", fill[row]):
            if matcher.accept(query, text, similarity):
                break
        wall.append(time.perf_counter() - w0)
        cpu.append(time.thread_time() - c0)
    return {
        "entries": entries,
        "queries": queries,
        "synthetic_fill": len(vectors) < entries + queries,
        # the index and the guards alone (no embedding, no store)
        "search_p50_ms": _ms(wall, 50),
        "search_p99_ms": _ms(wall, 99),
        "search_cpu_p50_ms": _ms(cpu, 50),
        "search_cpu_p99_ms": _ms(cpu, 99),
        # a whole ResponseCache.get per store: exact miss, embed, search, guards, read the entry
        **store_latency(
            matcher,
            fill[:entries],
            [texts[row % len(texts)] for row in range(entries)],
            entries,
            queries,
            redis_url,
        ),
        "index_recall": _index_recall(index, fill[:entries], fill[entries:], matcher.threshold),
        **_embed_times(matcher, texts[:queries]),
    }


def _index_recall(
    index: VectorIndex, stored: NDArray[np.float32], queries: NDArray[np.float32], threshold: float
) -> dict[str, float]:
    """Of the queries (up to 300) whose exact nearest neighbour reaches ``threshold - 0.05``, the
    share for which the index returned a neighbour that similar (the binary prefilter's misses).
    Also times the exact search (one matvec over every entry) the prefilter replaces."""
    near = found = 0
    exact: list[float] = []
    for query in queries[:300]:
        start = time.perf_counter()
        best = float((stored @ query).max())
        exact.append(time.perf_counter() - start)
        if best < threshold - 0.05:
            continue
        near += 1
        found += index.search("scope", query, k=1)[0][1] >= best - 1e-5
    return {
        "queries_with_a_near_match": near,
        "found": round(found / near, 4) if near else 1.0,
        "exact_search_p50_ms": _ms(exact, 50),
        "exact_search_p99_ms": _ms(exact, 99),
    }


def _fill(vectors: NDArray[np.float32], n: int) -> NDArray[np.float32]:
    """``n`` unit vectors: the given ones, then noisy copies of them (never exact duplicates)."""
    if len(vectors) >= n:
        return vectors[:n]
    rng = np.random.default_rng(SEED)
    copies = vectors[np.arange(n - len(vectors)) % len(vectors)]
    noisy = copies + rng.normal(0.0, 0.05, copies.shape).astype(np.float32)
    out = np.concatenate([vectors, noisy])
    result: NDArray[np.float32] = out / np.linalg.norm(out, axis=1, keepdims=True)
    return result


def _embed_times(matcher: SemanticMatcher, texts: list[str]) -> dict[str, float]:
    wall = []
    for text in texts:
        start = time.perf_counter()
        matcher.embed(text)
        wall.append(time.perf_counter() - start)
    return {"embed_p50_ms": _ms(wall, 50), "embed_p99_ms": _ms(wall, 99)}


def _ms(samples: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(samples) * 1000.0, q)), 3) if samples else 0.0


def bench_cache(
    data: Path,
    matcher: SemanticMatcher,
    *,
    limit: int | None = None,
    hard_negatives_path: Path | None = None,
    entries: int = 100_000,
    queries: int = 2000,
    redis_url: str | None = None,
) -> dict[str, Any]:
    """The whole report: quality on the held-out pairs, then latency; plus the machine's load."""
    pairs = load_pairs(data)
    report = quality(matcher, pairs, limit)
    if hard_negatives_path is not None:
        report["hard_negatives"] = hard_negatives(matcher, hard_negatives_path)
    report.update(latency(matcher, pairs, entries, queries, redis_url))
    report["load_average_1m"] = round(os.getloadavg()[0], 2)
    report["cpus"] = os.cpu_count()
    return report
