"""Evaluate a trained router on outcome data: cost-quality metrics and decision latency.

``evaluate`` is what ``hybridgate router eval`` prints: the strong share needed for 95% of the
strong tier's quality, APGR, CPT(50%), CPT(80%), cost in USD when the data has cost columns, what
the router's own threshold achieves on this data, and the decision time per request (p50/p99).

Latency is measured the way the gateway pays it: one request at a time, tokenisation and
embedding included, explanation included, after a short warm-up, on whatever else the machine is
doing (the one-minute load average is reported beside it).
Offline only.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from hybridgate.router.learned import LearnedRouter
from hybridgate.training.calibration import achieved
from hybridgate.training.dataset import Outcomes
from hybridgate.training.quality import curve, random_share_for_quality, summary

WARMUP = 20


def decision_latency_ms(
    router: LearnedRouter,
    prompts: list[str],
    answers: list[str] | None = None,
    limit: int = 500,
    seed: int = 0,
    warm: int = 0,
) -> dict[str, float]:
    """p50/p99 of single-request scoring over up to ``limit`` of the given prompts.

    The warm-up scores other prompts than the timed ones when there are enough (``WARMUP``, or
    ``warm`` when larger: the state of a router that has served that many requests), so no timed
    prompt has been seen before."""
    if not prompts:
        return {
            "decision_p50_ms": 0.0,
            "decision_p99_ms": 0.0,
            "decision_cpu_p50_ms": 0.0,
            "decision_cpu_p99_ms": 0.0,
        }
    order = np.random.default_rng(seed).permutation(len(prompts))
    rows = order[:limit]
    others = order[limit : limit + max(warm, WARMUP)]
    for i in others if len(others) else rows[:WARMUP]:
        router.score(prompts[i], answers[i] if answers else None)
    wall, cpu = [], []
    for i in rows:
        start, start_cpu = time.perf_counter(), time.thread_time()
        router.score(prompts[i], answers[i] if answers else None)
        cpu.append((time.thread_time() - start_cpu) * 1000)
        wall.append((time.perf_counter() - start) * 1000)
    p50, p99 = np.percentile(wall, [50, 99])
    cpu50, cpu99 = np.percentile(cpu, [50, 99])
    return {
        "decision_p50_ms": round(float(p50), 3),
        "decision_p99_ms": round(float(p99), 3),
        # CPU time of the deciding thread: the wall-clock tail minus time the OS gave to others.
        "decision_cpu_p50_ms": round(float(cpu50), 3),
        "decision_cpu_p99_ms": round(float(cpu99), 3),
    }


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # not available on this platform
        return None


def evaluate(router: LearnedRouter, outcomes: Outcomes, latency_rows: int = 500) -> dict[str, Any]:
    answers = outcomes.answers if router.artifact.features.answer else None
    scores = router.predict(outcomes.prompts, answers).gain
    report: dict[str, Any] = {
        "rows": len(outcomes),
        "weak": outcomes.weak_name,
        "strong": outcomes.strong_name,
    }
    report.update(
        summary(curve(scores, outcomes.weak, outcomes.strong, outcomes.weak_cost, outcomes.strong_cost))
    )
    report["random_strong_share_at_95"] = round(
        random_share_for_quality(float(outcomes.weak.mean()), float(outcomes.strong.mean())), 4
    )
    share, ratio = achieved(router.threshold, scores, outcomes.weak, outcomes.strong)
    report["at_threshold"] = {
        "threshold": router.threshold,
        "strong_share": round(share, 4),
        "quality_ratio": round(ratio, 4),
    }
    report.update(decision_latency_ms(router, outcomes.prompts, answers, latency_rows))
    report["load_average_1m"] = load_average()
    return report
