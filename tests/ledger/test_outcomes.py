"""The outcomes and promotions tables on both ledger stores: the same answers from SQLite and from a
real PostgreSQL server (tests/postgres_server.py; migration 6 creates the tables)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hybridgate.ledger.base import Ledger
from hybridgate.ledger.outcomes import Outcome, Outcomes, PostgresOutcomes, Promotion, SqliteOutcomes
from hybridgate.ledger.postgres import PostgresLedger
from hybridgate.ledger.records import LedgerRecord
from hybridgate.ledger.store import SqliteLedger
from tests.postgres_server import PostgresServer, new_database, run_postgres


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    with run_postgres() as pg:
        yield pg


@pytest.fixture(params=["sqlite", "postgres"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Ledger, Outcomes]]:
    if request.param == "sqlite":
        path = str(tmp_path / "gw.db")
        ledger: Ledger = SqliteLedger(path, flush_interval_s=0.05)
        outcomes: Outcomes = SqliteOutcomes(path)
    else:
        dsn = new_database(request.getfixturevalue("server"))
        ledger = PostgresLedger(dsn, spool_path=str(tmp_path / "spool.jsonl"), flush_interval_s=0.05)
        outcomes = PostgresOutcomes(dsn, password=None, timeout_s=5)
    ledger.start()
    try:
        yield ledger, outcomes
    finally:
        ledger.close()


def test_outcomes_upsert_and_read_back_on_either_store(stores: tuple[Ledger, Outcomes]) -> None:
    ledger, store = stores
    ledger.record(
        LedgerRecord(ts=time.time(), request_id="r1", api_key_id="key_a", route="auto", backend="cheap")
    )
    ledger.record(
        LedgerRecord(ts=time.time(), request_id="r2", api_key_id="key_a", route="auto", backend="strong")
    )
    assert ledger.flush(10)

    async def run() -> None:
        await store.start()
        base = Outcome(
            request_id="r1", api_key_id="key_a", source="feedback", ts=1.0, route="auto", served="cheap"
        )
        await store.save(Outcome(**{**base.__dict__, "cheap_score": 1.0}))
        await store.save(Outcome(**{**base.__dict__, "cheap_score": 0.0}))  # replaces: one row
        await store.save(
            Outcome(**{**base.__dict__, "source": "judge", "cheap_score": 1.0, "judge_cost_usd": 0.01})
        )
        rows = await store.outcomes("auto")
        assert sorted((o.source, o.cheap_score) for o in rows) == [("feedback", 0.0), ("judge", 1.0)]
        assert (await store.owned_request("r1", "key_a")) == {
            "route": "auto",
            "backend": "cheap",
            "feature": None,
        }
        assert await store.owned_request("r1", "key_b") is None  # another key's request
        served = sorted((r["backend"], r["requests"]) for r in await store.served_by())
        assert served == [("cheap", 1), ("strong", 1)]
        promotion = Promotion(
            ts=2.0, route="auto", promoted=False, reason="not better", serving_sha256="a",
            candidate_sha256=None, rows_train=70, rows_held_out=30, metric="strong_share_at_95",
            serving_value=0.5, candidate_value=0.49, improvement=0.01, ci_low=-0.05, ci_high=0.07,
        )  # fmt: skip
        await store.record_promotion(promotion)
        (recorded,) = await store.promotions("auto")
        assert recorded["promoted"] is False and recorded["ci_low"] == -0.05 and recorded["rows_train"] == 70
        await store.aclose()

    asyncio.run(run())


def test_no_ledger_yet_reads_as_no_requests(tmp_path: Path) -> None:
    async def run() -> None:
        store = SqliteOutcomes(str(tmp_path / "empty.db"))
        await store.start()
        assert await store.owned_request("r1", "key_a") is None
        assert await store.outcomes() == []
        await store.aclose()

    asyncio.run(run())
