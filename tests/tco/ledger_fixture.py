"""A ledger pre-filled with a known week of traffic, shared by the TCO and dashboard tests.

Real SQLite written through ``SqliteLedger`` (or real PostgreSQL through ``PostgresLedger``,
``fill_store``); the numbers are chosen so totals are easy to check.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from hybridgate.config import GatewayConfig
from hybridgate.ledger.base import Ledger
from hybridgate.ledger.records import LedgerRecord
from hybridgate.ledger.store import SqliteLedger

DAY = 86_400.0


@dataclass(frozen=True)
class Traffic:
    """What ``fill_ledger`` wrote, for assertions."""

    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    local_tokens: int
    cloud_tokens: int
    escalated: int
    cache_hits: int
    cache_lookups: int


def config_for(ledger: Path, *, postgres_dsn: str | None = None) -> GatewayConfig:
    """``local`` is the embedded tier; ``cloud`` an OpenAI-compatible API (never called here).

    With ``postgres_dsn`` the ledger is that PostgreSQL database instead of the file ``ledger``.
    """
    shared = {"store": "postgres", "spool_path": f"{ledger}.spool"} if postgres_dsn else {}
    return GatewayConfig.model_validate(
        {
            "environment": "test",
            "ledger": {"path": str(ledger), "flush_interval_s": 0.05, **shared},
            **({"postgres": {"dsn": postgres_dsn}} if postgres_dsn else {}),
            "backends": {
                "local": {"type": "embedded"},
                "cloud": {
                    "type": "openai_compat",
                    "base_url": "http://127.0.0.1:9/v1",
                    "model": "gpt-4o-mini",
                    "price": {"input_per_mtok": 5.0, "output_per_mtok": 15.0},
                },
            },
            "routes": {"auto": {"try": ["local", "cloud"]}, "frontier": {"try": ["cloud"]}},
        }
    )


def records(now: float) -> list[LedgerRecord]:
    """Four days, six hourly slots a day; each slot has one local answer and one escalation.

    Local: 300 + 100 tokens in 2 s (200 tokens/s), free. Cloud: 750 + 250 tokens in 0.8 s for
    $0.0075 ($7.50 per million tokens), after the local answer failed its JSON check.
    """
    out = []
    for day in range(4):
        for slot in range(6):
            ts = now - (3 - day) * DAY - slot * 3600 - 60
            out.append(_local(f"l{day}-{slot}", ts))
            out.append(_escalated(f"c{day}-{slot}", ts))
    return out


def _local(request_id: str, ts: float) -> LedgerRecord:
    return LedgerRecord(
        ts=ts, request_id=request_id, environment="test", route="auto", backend="local", model="smollm2",
        feature="support", cohort="beta", prompt_tokens=300, completion_tokens=100, latency_ms=2000.0,
        cost_usd=0.0, rule="default", attempts=["local:ok"], cache="miss",
    )  # fmt: skip


def _escalated(request_id: str, ts: float) -> LedgerRecord:
    return LedgerRecord(
        ts=ts, request_id=request_id, environment="test", route="frontier", backend="cloud",
        model="gpt-4o-mini", feature="search", prompt_tokens=750, completion_tokens=250, latency_ms=800.0,
        cost_usd=0.0075, rule="long-prompt", attempts=["local:check_failed:json", "cloud:ok"], cache="hit",
    )  # fmt: skip


def fill_ledger(path: Path, now: float | None = None) -> Traffic:
    return fill_store(SqliteLedger(str(path)), now)


def fill_store(ledger: Ledger, now: float | None = None) -> Traffic:
    """Write the known week through ``ledger`` (either store) and close it."""
    rows = records(time.time() if now is None else now)
    ledger.start()
    for rec in rows:
        ledger.record(rec)
    ledger.close()
    local = [r for r in rows if r.backend == "local"]
    cloud = [r for r in rows if r.backend == "cloud"]
    return Traffic(
        requests=len(rows),
        prompt_tokens=sum(r.prompt_tokens for r in rows),
        completion_tokens=sum(r.completion_tokens for r in rows),
        cost_usd=sum(r.cost_usd for r in rows),
        local_tokens=sum(r.prompt_tokens + r.completion_tokens for r in local),
        cloud_tokens=sum(r.prompt_tokens + r.completion_tokens for r in cloud),
        escalated=len(cloud),
        cache_hits=len(cloud),
        cache_lookups=len(rows),
    )
