"""The learned routing's decision metrics in Prometheus, per route and feature.

- ``hybridgate_router_tier_total{route, feature, tier}``: live answers by tier (cheap | strong);
  the strong-call share is ``strong / (cheap + strong)``.
- ``hybridgate_outcomes_total{route, feature, served, cheap}``: graded answers, by the tier that
  served and whether the cheap tier's answer was judged good or bad.
- Gauges at scrape time, from this process's counts: ``hybridgate_router_regret`` (share of cheap
  answers judged bad), ``hybridgate_router_wasted_strong`` (share of graded strong answers where
  the cheap one was judged good) and ``hybridgate_router_strong_share``. Across replicas, compute
  the ratios from the counters (docs/ledger.md gives the PromQL).
Labels take config-bounded values only (the caller's feature through ``feature_label``).
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

GOOD = 0.5  # a score at or above this counts the cheap answer as good


class DecisionMetrics(Collector):
    def __init__(self, registry: CollectorRegistry, feature_label: Callable[[str | None], str]) -> None:
        self._feature = feature_label
        self.tiers = Counter(
            "hybridgate_router_tier",
            "Live answers by the tier that served them.",
            ["route", "feature", "tier"],
            registry=registry,
        )
        self.outcomes = Counter(
            "hybridgate_outcomes",
            "Graded answers: the tier that served, and whether the cheap answer was good.",
            ["route", "feature", "served", "cheap"],
            registry=registry,
        )
        self._tier_counts: Tally[tuple[str, str, str]] = Tally()
        self._graded: Tally[tuple[str, str, str, str]] = Tally()
        registry.register(self)

    def served(self, route: str, feature: str | None, tier: str) -> None:
        key = (route, self._feature(feature), tier)
        self.tiers.labels(*key).inc()
        self._tier_counts[key] += 1

    def graded(self, route: str, feature: str | None, served: str, cheap_score: float) -> None:
        verdict = "good" if cheap_score >= GOOD else "bad"
        key = (route, self._feature(feature), served, verdict)
        self.outcomes.labels(*key).inc()
        self._graded[key] += 1

    def collect(self) -> Iterable[Metric]:
        labels = ["route", "feature"]
        regret = GaugeMetricFamily(
            "hybridgate_router_regret", "Share of graded cheap answers judged bad.", labels=labels
        )
        wasted = GaugeMetricFamily(
            "hybridgate_router_wasted_strong",
            "Share of graded strong answers where the cheap answer was judged good.",
            labels=labels,
        )
        share = GaugeMetricFamily(
            "hybridgate_router_strong_share", "Share of live answers from the strong tier.", labels=labels
        )
        for (route, feature), (bad, good) in self._pairs("cheap").items():
            regret.add_metric([route, feature], bad / (bad + good))
        for (route, feature), (bad, good) in self._pairs("strong").items():
            wasted.add_metric([route, feature], good / (bad + good))
        groups = {(r, f) for r, f, _ in self._tier_counts}
        for route, feature in sorted(groups):
            strong, cheap = (
                self._tier_counts[(route, feature, "strong")],
                self._tier_counts[(route, feature, "cheap")],
            )
            share.add_metric([route, feature], strong / (strong + cheap))
        yield from (regret, wasted, share)

    def _pairs(self, served: str) -> dict[tuple[str, str], tuple[int, int]]:
        out: dict[tuple[str, str], tuple[int, int]] = {}
        for (route, feature, tier, _), _n in self._graded.items():
            if tier == served:
                key = (route, feature)
                out[key] = (self._graded[(*key, tier, "bad")], self._graded[(*key, tier, "good")])
        return out
