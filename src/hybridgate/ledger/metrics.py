"""Prometheus metrics, updated from the same ``LedgerRecord`` the store writes.

Sits at layer 5 of the flow beside the store: the pipeline calls ``observe()`` once per finished
request and the admin endpoint serves ``render()``. Every metric lives in the registry passed in
(never the global one), so tests and several gateways in one process don't collide. Labels take
only config-bounded values (route, backend, feature, rule, ...): never request ids or models
named by callers. Must not do I/O or import anything above ``hybridgate.types/config/errors``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hybridgate.ledger.drift import DriftWatch
from hybridgate.ledger.records import LedgerRecord

# LLM calls run from tens of milliseconds (cache, tiny local model) to minutes (long generations).
DURATION_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
OTHER = "other"
NONE = "none"


class _DroppedCollector(Collector):
    """Reads the ledger's own drop count at scrape time, so the store needn't know metrics."""

    def __init__(self, source: Callable[[], int]) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        yield CounterMetricFamily(
            "hybridgate_ledger_dropped",
            "Ledger records lost: queue full, ledger closed, or a failed write.",
            value=float(self._source()),
        )


class _DegradedCollector(Collector):
    """At scrape time, 1 per shared-store component failing right now (cache, ledger, limits,
    keys), 0 for the others: a hung store and a dead one look the same here as on /healthz."""

    COMPONENTS = ("cache", "ledger", "limits", "keys", "telemetry")

    def __init__(self, source: Callable[[], Mapping[str, str]]) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        failing = self._source()
        family = GaugeMetricFamily(
            "hybridgate_degraded", "1 while a shared store is failing (served around).", labels=["component"]
        )
        for component in self.COMPONENTS:
            family.add_metric([component], 1.0 if component in failing else 0.0)
        yield family


@dataclass(frozen=True)
class _Children:
    """The labelled series that one (api, route, backend, feature, status, rule) combination updates.

    Bound once per combination and kept: ``labels()`` validates and looks up its values under a
    lock on every call, which cost more per request than updating the series themselves.
    """

    requests: Counter
    duration: Histogram
    ttft: Histogram
    prompt_tokens: Counter
    completion_tokens: Counter
    cost: Counter
    decisions: Counter | None


_Key = tuple[str, str, str, str, int, str | None]


class GatewayMetrics:
    """All gateway series in one registry; ``observe`` updates them from one ledger record."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        ledger_dropped: Callable[[], int] | None = None,
        pins: Mapping[str, str] | None = None,
        features: Collection[str] | None = None,
    ) -> None:
        self.registry = registry
        self._pins = dict(pins or {})  # backend name -> pinned upstream model id
        self.drift = DriftWatch(self._pins)  # logged once per change; /healthz and the dashboard
        # Callers choose feature names: only those the config knows become label values, so a
        # client cannot grow the series without bound; the ledger keeps the raw value.
        self._features = None if features is None else frozenset(features)
        self.requests = Counter(
            "hybridgate_requests",
            "Requests served, by outcome.",
            ["api", "route", "backend", "feature", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "hybridgate_request_duration_seconds",
            "Wall time from request received to response finished.",
            ["route", "backend"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.ttft = Histogram(
            "hybridgate_time_to_first_token_seconds",
            "Time from request received to the first streamed token.",
            ["route", "backend"],
            buckets=TTFT_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "hybridgate_tokens",
            "Tokens processed, by kind (prompt or completion).",
            ["route", "backend", "feature", "kind"],
            registry=registry,
        )
        self.cost = Counter(
            "hybridgate_cost_usd",
            "Estimated spend in US dollars.",
            ["route", "backend", "feature"],
            registry=registry,
        )
        self.decisions = Counter(
            "hybridgate_router_decisions",
            "Router decisions, by the rule that decided.",
            ["route", "rule"],
            registry=registry,
        )
        self.cache = Counter(
            "hybridgate_cache",
            "Response cache lookups, by result and route.",
            ["result", "route"],
            registry=registry,
        )
        self.cache_saved = Counter(
            "hybridgate_cache_saved_usd",
            "What cache hits would have cost, by route.",
            ["route"],
            registry=registry,
        )
        # `reported` is the model the upstream says answered: bounded by what the provider serves
        # for that backend, never by what callers send.
        self.version_mismatch = Counter(
            "hybridgate_version_mismatch",
            "Responses whose upstream-reported model differs from the backend's pinned version.",
            ["backend", "pinned", "reported"],
            registry=registry,
        )
        # The egress gate's decisions (docs/privacy.md): backend and path come from the config and
        # a fixed set (live, fallback, escalation, shadow, replay, eval, judge ...).
        self.egress = Counter(
            "hybridgate_egress",
            "Calls to non-local backends, by the privacy gate's decision: allowed, redacted, blocked.",
            ["backend", "path", "decision"],
            registry=registry,
        )
        # Why requests failed: the error class's wire type (overloaded, service_unavailable,
        # timeout, ...), a bounded set, so a 503 from a store outage is not read as an overload.
        self.errors = Counter(
            "hybridgate_errors",
            "Failed requests, by status and error type.",
            ["route", "status", "error_type"],
            registry=registry,
        )
        registry.register(_DroppedCollector(ledger_dropped or (lambda: 0)))
        # As bounded as the series themselves: one entry per label combination already exported.
        self._children: dict[_Key, _Children] = {}
        self._cache_children: dict[tuple[str, str], Counter] = {}
        self._egress_children: dict[str, Counter] = {}  # by the ledger's egress entry text

    def watch_degraded(self, source: Callable[[], Mapping[str, str]]) -> None:
        """Export ``hybridgate_degraded`` from ``source`` (the gateway's ``degraded()``) at scrape."""
        self.registry.register(_DegradedCollector(source))

    def _observe_cache(self, result: str, route: str, saved_usd: float) -> None:
        cache = self._cache_children.get((result, route))
        if cache is None:
            cache = self._cache_children[(result, route)] = self.cache.labels(result, route)
        cache.inc()
        if saved_usd > 0:
            self.cache_saved.labels(route).inc(saved_usd)

    def _feature(self, feature: str | None) -> str:
        if feature is None:
            return NONE
        return feature if self._features is None or feature in self._features else OTHER

    def observe(self, rec: LedgerRecord) -> None:
        """Update every series from one finished request. Counters only go up, hence the max()."""
        key = (
            rec.api,
            rec.route or NONE,
            rec.backend or NONE,
            self._feature(rec.feature),
            rec.status,
            rec.rule,
        )
        series = self._children.get(key) or self._bind(key)
        series.requests.inc()
        series.duration.observe(rec.latency_ms / 1000)
        if rec.ttft_ms is not None:
            series.ttft.observe(rec.ttft_ms / 1000)
        series.prompt_tokens.inc(max(rec.prompt_tokens, 0))
        series.completion_tokens.inc(max(rec.completion_tokens, 0))
        series.cost.inc(max(rec.cost_usd, 0.0))
        if series.decisions is not None:
            series.decisions.inc()
        if rec.cache is not None:
            self._observe_cache(rec.cache, rec.route or NONE, rec.saved_usd)
        for entry in rec.egress:
            egress = self._egress_children.get(entry)
            if egress is None:
                egress = self._egress_children[entry] = self.egress.labels(*entry.rsplit(":", 2))
            egress.inc()
        if rec.error_type is not None:
            self.errors.labels(rec.route or NONE, rec.status, rec.error_type).inc()
        # Only requests sent with the pinned id count: a caller naming another model explicitly
        # (``backend/model``) gets what it asked for, which is no drift.
        pinned = self._pins.get(rec.backend or "")
        if pinned and rec.model == pinned and rec.reported_model and rec.reported_model != pinned:
            self.version_mismatch.labels(rec.backend, pinned, rec.reported_model).inc()
        self.drift.observe(rec)

    def _bind(self, key: _Key) -> _Children:
        api, route, backend, feature, status, rule = key
        children = _Children(
            requests=self.requests.labels(api, route, backend, feature, str(status)),
            duration=self.duration.labels(route, backend),
            ttft=self.ttft.labels(route, backend),
            prompt_tokens=self.tokens.labels(route, backend, feature, "prompt"),
            completion_tokens=self.tokens.labels(route, backend, feature, "completion"),
            cost=self.cost.labels(route, backend, feature),
            decisions=self.decisions.labels(route, rule) if rule is not None else None,
        )
        self._children[key] = children
        return children

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition of every series, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
