"""GatewayMetrics: one ledger record in, Prometheus text out, in a private registry."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from hybridgate.ledger.metrics import GatewayMetrics
from hybridgate.ledger.records import LedgerRecord


def samples(metrics: GatewayMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(metrics: GatewayMetrics, name: str, **labels: str) -> float:
    return samples(metrics)[(name, frozenset(labels.items()))]


def record(**kw: object) -> LedgerRecord:
    base: dict[str, object] = {
        "ts": 0.0,
        "request_id": "r",
        "route": "auto",
        "backend": "local",
        "feature": "chat",
        "prompt_tokens": 12,
        "completion_tokens": 30,
        "latency_ms": 750.0,
        "ttft_ms": 40.0,
        "cost_usd": 0.002,
        "rule": "long-prompt",
        "cache": "miss",
    }
    base.update(kw)
    return LedgerRecord(**base)  # type: ignore[arg-type]


def test_observe_updates_every_series() -> None:
    metrics = GatewayMetrics(CollectorRegistry())
    metrics.observe(record())
    metrics.observe(record(status=504, ttft_ms=None, cache="hit", cost_usd=0.001, saved_usd=0.25))
    req = {"api": "openai", "route": "auto", "backend": "local", "feature": "chat"}
    assert value(metrics, "hybridgate_requests_total", **req, status="200") == 1
    assert value(metrics, "hybridgate_requests_total", **req, status="504") == 1
    rb = {"route": "auto", "backend": "local"}
    assert value(metrics, "hybridgate_request_duration_seconds_count", **rb) == 2
    assert value(metrics, "hybridgate_request_duration_seconds_sum", **rb) == pytest.approx(1.5)
    assert value(metrics, "hybridgate_request_duration_seconds_bucket", **rb, le="1.0") == 2
    assert value(metrics, "hybridgate_request_duration_seconds_bucket", **rb, le="0.5") == 0
    assert value(metrics, "hybridgate_time_to_first_token_seconds_count", **rb) == 1
    tok = {**rb, "feature": "chat"}
    assert value(metrics, "hybridgate_tokens_total", **tok, kind="prompt") == 24
    assert value(metrics, "hybridgate_tokens_total", **tok, kind="completion") == 60
    assert value(metrics, "hybridgate_cost_usd_total", **tok) == pytest.approx(0.003)
    assert value(metrics, "hybridgate_router_decisions_total", route="auto", rule="long-prompt") == 2
    assert value(metrics, "hybridgate_cache_total", result="miss", route="auto") == 1
    assert value(metrics, "hybridgate_cache_total", result="hit", route="auto") == 1
    assert value(metrics, "hybridgate_cache_saved_usd_total", route="auto") == pytest.approx(0.25)
    assert value(metrics, "hybridgate_ledger_dropped_total") == 0


def test_missing_labels_become_none_and_absent_facts_add_nothing() -> None:
    metrics = GatewayMetrics(CollectorRegistry())
    metrics.observe(record(api="anthropic", route=None, backend=None, feature=None, rule=None, cache=None))
    found = samples(metrics)
    labels = {"api": "anthropic", "route": "none", "backend": "none", "feature": "none", "status": "200"}
    assert found[("hybridgate_requests_total", frozenset(labels.items()))] == 1
    assert not any(name == "hybridgate_router_decisions_total" for name, _ in found)
    assert not any(name == "hybridgate_cache_total" for name, _ in found)


def test_dropped_counter_reads_the_ledger_at_scrape_time() -> None:
    dropped = [0]
    metrics = GatewayMetrics(CollectorRegistry(), ledger_dropped=lambda: dropped[0])
    dropped[0] = 7
    assert value(metrics, "hybridgate_ledger_dropped_total") == 7
    body, _ = metrics.render()
    assert b"# TYPE hybridgate_ledger_dropped_total counter" in body


def test_two_gateways_in_one_process_do_not_collide() -> None:
    first, second = GatewayMetrics(CollectorRegistry()), GatewayMetrics(CollectorRegistry())
    first.observe(record())
    assert "hybridgate_requests_total" in first.render()[0].decode()
    assert value(second, "hybridgate_ledger_dropped_total") == 0
    assert not any(name == "hybridgate_requests_total" for name, _ in samples(second))


def test_repeated_label_combinations_are_bound_once(monkeypatch: pytest.MonkeyPatch) -> None:
    metrics = GatewayMetrics(CollectorRegistry())
    calls: list[tuple[str, ...]] = []
    real = metrics.requests.labels

    def counting(*values: str) -> object:
        calls.append(values)
        return real(*values)

    monkeypatch.setattr(metrics.requests, "labels", counting)
    for _ in range(5):
        metrics.observe(record())
    metrics.observe(record(status=502))
    assert calls == [("openai", "auto", "local", "chat", "200"), ("openai", "auto", "local", "chat", "502")]
    req = {"api": "openai", "route": "auto", "backend": "local", "feature": "chat"}
    assert value(metrics, "hybridgate_requests_total", **req, status="200") == 5
    assert (
        value(
            metrics, "hybridgate_tokens_total", route="auto", backend="local", feature="chat", kind="prompt"
        )
        == 72
    )


def test_unknown_features_share_one_label_so_callers_cannot_grow_the_series() -> None:
    metrics = GatewayMetrics(CollectorRegistry(), features={"chat"})
    for i in range(50):
        metrics.observe(record(feature=f"made-up-{i}"))
    metrics.observe(record(feature="chat"))
    features = {
        dict(labels).get("feature")
        for name, labels in samples(metrics)
        if name == "hybridgate_requests_total"
    }
    assert features == {"chat", "other"}
    assert (
        value(
            metrics,
            "hybridgate_requests_total",
            api="openai",
            route="auto",
            backend="local",
            feature="other",
            status="200",
        )
        == 50
    )
