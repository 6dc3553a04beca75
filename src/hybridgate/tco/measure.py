"""Measure the workload from the ledger: daily volume, token mix, local share, throughput, shape.

Offline reader for ``hybridgate tco --from-ledger``, ``hybridgate decide`` and the dashboard.
``summarise`` is pure; ``read_workload`` asks a ``Ledger`` (SQLite or PostgreSQL, whichever the
config names) for its ``traffic`` view and summarises it. Nothing here writes to the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from hybridgate.ledger.base import Ledger

# A workload whose busiest hour carries more than this multiple of the average hour is bursty:
# a self-hosted stack sized for the peak idles most of the day.
BURSTY_PEAK_TO_MEAN = 3.0
# Fewer hours than this say nothing about the daily shape.
MIN_HOURS_FOR_SHAPE = 24


@dataclass(frozen=True)
class Workload:
    """What the ledger says about the traffic, averaged per day over ``days``."""

    days: float
    requests: int
    daily_tokens: float
    input_share: float
    local_share: float
    avg_prompt_tokens: float
    cloud_usd_per_mtok: float | None  # None: no priced cloud traffic to measure
    local_tps: float | None  # None: no successful local requests
    peak_to_mean: float | None
    shape: str  # "steady", "bursty" or "unknown"
    embeddings: EmbeddingLoad | None = None  # None: no embeddings requests in the period
    overhead: Overhead | None = None  # None: not read (a bare ``summarise``)


@dataclass(frozen=True)
class Overhead:
    """Tokens beyond live demand, measured: the gateway's own traffic and escalations' waste."""

    share: float  # extra tokens as a fraction of live tokens
    by_class: dict[str, int]  # tokens per non-live traffic class (shadow, replay, eval, judge)
    wasted_tokens: int  # cheaper tiers' answers that escalations threw away (live traffic)
    escalations: int
    cache_saved_daily_usd: float  # what cache hits saved per day (live traffic)
    overhead_daily_usd: float  # spend of the non-live classes per day


@dataclass(frozen=True)
class EmbeddingLoad:
    """Embeddings measured in the ledger: what was embedded upstream, and what the cache saved."""

    daily_tokens: float  # tokens sent to embedders per day (cache hits excluded)
    daily_texts: float  # inputs per day, cached or not
    hit_rate: float  # share of inputs the per-text cache answered
    usd_per_mtok: float | None  # measured cloud price; None when nothing was priced


def embedding_load(by_api: list[dict[str, Any]], days: float) -> EmbeddingLoad | None:
    """The ``embeddings`` row of ``usage(by="api")`` per day over ``days``; None when absent."""
    row = next((r for r in by_api if r.get("api") == "embeddings"), None)
    if row is None or not row["texts"]:
        return None
    tokens, cost = row["prompt_tokens"], row["cost_usd"]
    return EmbeddingLoad(
        daily_tokens=tokens / days,
        daily_texts=row["texts"] / days,
        hit_rate=row["cached_texts"] / row["texts"],
        usd_per_mtok=cost / tokens * 1_000_000 if tokens and cost > 0 else None,
    )


def summarise(
    backends: list[dict[str, Any]], hourly: dict[int, int], local: set[str], *, since: float, now: float
) -> Workload | None:
    """The workload from a ledger's ``traffic`` view (backend totals, hourly tokens); None when empty."""
    tokens = sum(b["prompt_tokens"] + b["completion_tokens"] for b in backends)
    requests = sum(b["requests"] for b in backends)
    if not backends or tokens == 0:
        return None
    first = max(since, min(b["first_ts"] for b in backends))
    # Less than a day of traffic counts as one day: a burst of tests is not a daily rate.
    days = max((now - first) / 86_400, 1.0)
    local_rows = [b for b in backends if b["backend"] in local]
    cloud_rows = [b for b in backends if b["backend"] not in local]
    peak = peak_to_mean(hourly)
    return Workload(
        days=days,
        requests=requests,
        daily_tokens=tokens / days,
        input_share=sum(b["prompt_tokens"] for b in backends) / tokens,
        local_share=_tokens(local_rows) / tokens,
        avg_prompt_tokens=sum(b["prompt_tokens"] for b in backends) / requests,
        cloud_usd_per_mtok=_price_per_mtok(cloud_rows),
        local_tps=_throughput(local_rows),
        peak_to_mean=peak,
        shape="unknown" if peak is None else ("bursty" if peak > BURSTY_PEAK_TO_MEAN else "steady"),
    )


def peak_to_mean(hourly: dict[int, int]) -> float | None:
    """Busiest hour over the average hour, counting silent hours in between as zero."""
    if not hourly:
        return None
    first, last = min(hourly), max(hourly)
    hours = last - first + 1
    total = sum(hourly.values())
    if hours < MIN_HOURS_FOR_SHAPE or total == 0:
        return None
    return max(hourly.values()) / (total / hours)


def _tokens(rows: list[dict[str, Any]]) -> int:
    return sum(int(b["prompt_tokens"] + b["completion_tokens"]) for b in rows)


def _price_per_mtok(rows: list[dict[str, Any]]) -> float | None:
    tokens, cost = _tokens(rows), sum(float(b["cost_usd"]) for b in rows)
    # Zero spend on cloud tokens means unpriced models, not free ones: don't report $0.
    return cost / tokens * 1_000_000 if tokens and cost > 0 else None


def _throughput(rows: list[dict[str, Any]]) -> float | None:
    served, busy = sum(b["served_tokens"] for b in rows), sum(b["busy_s"] for b in rows)
    return served / busy if served and busy > 0 else None


def read_workload(ledger: Ledger, local: set[str], *, days: float | None, now: float) -> Workload | None:
    """The workload over the last ``days`` (None: all time) in ``ledger``; None without traffic."""
    if days is not None and days <= 0:
        raise ValueError(f"--days must be positive, got {days}")
    since = 0.0 if days is None else now - days * 86_400
    backends, hourly = ledger.traffic(since)
    workload = summarise(backends, hourly, local, since=since, now=now)
    if workload is None:
        return None
    by_api = ledger.usage("api", days)
    return replace(
        workload,
        embeddings=embedding_load(by_api, workload.days),
        overhead=measure_overhead(ledger.usage("traffic", days, None), by_api, workload.days),
    )


def measure_overhead(by_class: list[dict[str, Any]], live: list[dict[str, Any]], days: float) -> Overhead:
    """Overhead from ``usage(by="traffic", every class)`` and the live ``usage`` rows."""
    tokens = {str(r["traffic"]): int(r["prompt_tokens"]) + int(r["completion_tokens"]) for r in by_class}
    live_tokens = tokens.pop("live", 0)
    wasted = sum(int(r.get("wasted_tokens", 0)) for r in live)
    extra = sum(tokens.values()) + wasted
    return Overhead(
        share=extra / live_tokens if live_tokens else 0.0,
        by_class=tokens,
        wasted_tokens=wasted,
        escalations=sum(int(r.get("escalations", 0)) for r in live),
        cache_saved_daily_usd=sum(float(r.get("saved_usd", 0.0)) for r in live) / days,
        overhead_daily_usd=sum(float(r["cost_usd"]) for r in by_class if r["traffic"] != "live") / days,
    )
