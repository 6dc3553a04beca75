"""Long load tests behind the ``soak`` marker (deselected by default; ``pytest -m soak`` runs them).

They drive the real ``python -m hybridgate serve`` child process through bench/faults.py and
bench/soak.py, in front of fault-injecting stand-in upstreams (the OpenAI stand-in from
tests/standins in their own processes, not OpenAI), and hold the issue's goals:

- 20% injected upstream failures with a fallback configured: client-visible error rate <= 0.1%;
- 20,000 requests: RSS growth < 10% from warm-up to end, and one ledger row per request.
"""

from __future__ import annotations

import argparse

import pytest

from bench import faults, soak
from bench.fault_upstream import AFTER_FIRST_BYTE, BEFORE_FIRST_BYTE

pytestmark = pytest.mark.soak


def test_fallback_hides_20_percent_upstream_faults() -> None:
    args = argparse.Namespace(
        requests=2000,
        concurrency=8,
        fail_rate=0.2,
        faults=",".join(BEFORE_FIRST_BYTE + AFTER_FIRST_BYTE),  # all before the commit point
        timeout_s=1.0,
        stream_share=0.25,
        flaky_config="",
        seed=1,
    )
    result = faults.run(args)
    assert result["client_error_rate"] <= 0.001, result
    assert result["ledger"]["rows"] == args.requests
    assert result["gateway_tracebacks"] == 0


def test_rss_holds_steady_over_20000_requests() -> None:
    args = argparse.Namespace(
        requests=20000, concurrency=8, stream_share=0.2, warmup=2000, max_seconds=600.0, features=0
    )
    result = soak.run(args)
    assert result["requests"] == args.requests, "the run hit its time limit"
    assert result["client_errors"] == 0, result["errors_by_kind"]
    assert result["memory"]["growth_pct"] < 10, result["memory"]
    assert result["ledger_rows_lost"] == 0
    assert result["gateway_tracebacks"] == 0
