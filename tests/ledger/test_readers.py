"""The ``Ledger`` read methods the offline readers use, on both stores holding the same rows.

SQLite through ``SqliteLedger``, PostgreSQL on the session's real server (Debian's, on loopback;
tests/conftest.py) through ``PostgresLedger``. Each view is checked against numbers worked out by
hand from the rows, and the two stores against each other.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hybridgate.errors import ConfigError
from hybridgate.ledger import read_ledger
from hybridgate.ledger.base import Ledger
from hybridgate.ledger.postgres import PostgresLedger
from hybridgate.ledger.records import LedgerRecord
from hybridgate.ledger.rollups import no_decisions
from hybridgate.ledger.store import SqliteLedger
from tests.gateway_process import free_port
from tests.ledger.stores import STORES, approx_equal, fill, open_store
from tests.postgres_server import PostgresServer, new_database
from tests.tco.ledger_fixture import config_for, records

NOW = time.time()
SKIP = ("eval", "replay")


def extra_rows(now: float) -> list[LedgerRecord]:
    """Logged prompts (one from an eval, one failed), a rejected request, and groups whose order
    depends on collation (upper case, non-ASCII) and on where NULL sorts."""

    def row(request_id: str, ts: float, **fields: object) -> LedgerRecord:
        base: dict[str, object] = {"environment": "test", "route": "auto", "backend": "local"}
        base |= {"prompt_tokens": 5, "completion_tokens": 1, "latency_ms": 10.0, "attempts": ["local:ok"]}
        return LedgerRecord(ts=ts, request_id=request_id, **(base | fields))  # type: ignore[arg-type]

    return [
        row("p1", now - 100, feature="Zeta", prompt_text="first question", cost_usd=0.25),
        row("p2", now - 90, feature="eval", prompt_text="a graded case"),
        row("p3", now - 80, prompt_text="it failed", status=500, attempts=["local:error:timeout"]),
        row("p4", now - 70, feature="ä", prompt_text="second question", latency_ms=12.5),
        row("bad", now - 60, feature="alpha", backend=None, route=None, status=400, attempts=[]),
    ]


@pytest.fixture(scope="module")
def stores(postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Ledger]:
    """Both stores, filled with the fixture's week plus ``extra_rows``."""
    rows = records(NOW) + extra_rows(NOW)
    tmp, dsn = tmp_path_factory.mktemp("readers"), new_database(postgres_server)
    return {store: fill(open_store(store, tmp, dsn), rows) for store in STORES}


@pytest.mark.parametrize("by", ["route", "feature", "cohort", "backend", "day"])
def test_daily_series_is_the_same_in_both_stores(stores: dict[str, Ledger], by: str) -> None:
    lite, pg = (stores[s].daily_series(by, NOW - 7 * 86_400) for s in STORES)
    assert approx_equal(pg, lite), (pg, lite)
    assert sum(r["requests"] for r in pg) == 53
    if by == "feature":  # None first, then by code point ("Zeta" < "alpha" < "ä"), whatever the collation
        assert {None, "Zeta", "alpha", "ä"} <= {r["feature"] for r in lite}
        assert lite == sorted(lite, key=lambda r: (r["day"], r["feature"] is not None, r["feature"] or ""))


@pytest.mark.parametrize("store", STORES)
def test_decisions_count_rules_escalations_cache_and_latency(stores: dict[str, Ledger], store: str) -> None:
    body = stores[store].decisions(NOW - 7 * 86_400)
    assert body["requests"] == 53
    assert body["by_rule"] == {"default": 24, "long-prompt": 24, "(none)": 5}
    assert (body["escalated"], body["check_failed"], body["attempt_errors"]) == (24, 24, 1)
    assert (body["cache_hits"], body["cache_lookups"]) == (24, 48)
    assert body["latency"]["p99_ms"] == 2000.0
    assert approx_equal(body, stores["sqlite"].decisions(NOW - 7 * 86_400))


@pytest.mark.parametrize("store", STORES)
def test_traffic_is_backend_totals_and_hourly_tokens(stores: dict[str, Ledger], store: str) -> None:
    backends, hourly = stores[store].traffic(NOW - 7 * 86_400)
    assert [b["backend"] for b in backends] == ["cloud", "local"]  # the rejected request has none
    local = backends[1]
    assert (local["requests"], local["prompt_tokens"], local["completion_tokens"]) == (28, 7220, 2404)
    assert local["served_tokens"] == 24 * 400 + 3 * 6  # the failed request served nothing
    assert local["busy_s"] == pytest.approx(24 * 2.0 + (10 + 10 + 12.5) / 1000)
    assert sum(hourly.values()) == sum(b["prompt_tokens"] + b["completion_tokens"] for b in backends) + 6
    assert approx_equal((backends, hourly), stores["sqlite"].traffic(NOW - 7 * 86_400))


@pytest.mark.parametrize("store", STORES)
def test_logged_prompts_newest_first_without_evals_or_failures(stores: dict[str, Ledger], store: str) -> None:
    rows = stores[store].logged_prompts(10, SKIP)
    assert [(r["request_id"], r["prompt_text"]) for r in rows] == [
        ("p4", "second question"),
        ("p1", "first question"),
    ]
    assert rows[0]["latency_ms"] == 12.5 and rows[1]["cost_usd"] == 0.25
    assert [r["request_id"] for r in stores[store].logged_prompts(10)] == ["p4", "p2", "p1"]
    assert len(stores[store].logged_prompts(1, SKIP)) == 1


@pytest.mark.parametrize("store", STORES)
def test_an_empty_window_reads_as_no_data(stores: dict[str, Ledger], store: str) -> None:
    future = NOW + 3600
    assert stores[store].daily_series("route", future) == []
    assert stores[store].decisions(future) == no_decisions()
    assert stores[store].traffic(future) == ([], {})


def test_a_store_no_gateway_has_written_yet_reads_as_empty(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    unwritten: list[Ledger] = [
        SqliteLedger(str(tmp_path / "never.db")),
        PostgresLedger(new_database(postgres_server), spool_path=str(tmp_path / "spool.jsonl")),  # no table
    ]
    for ledger in unwritten:
        assert ledger.decisions(0.0) == no_decisions()
        assert ledger.traffic(0.0) == ([], {})
        assert ledger.daily_series("day", 0.0) == [] and ledger.logged_prompts(5) == []
    assert not (tmp_path / "never.db").exists()  # reading never creates the file


def test_an_unreachable_postgres_ledger_raises_connection_error(tmp_path: Path) -> None:
    ledger = PostgresLedger(
        f"postgresql://postgres@127.0.0.1:{free_port()}/x", spool_path=str(tmp_path / "s.jsonl")
    )
    with pytest.raises(ConnectionError, match=r"cannot read PostgreSQL at 127\.0\.0\.1"):
        ledger.decisions(0.0)


def test_read_ledger_picks_the_configured_store_and_refuses_a_missing_file(tmp_path: Path) -> None:
    config = config_for(tmp_path / "ledger.db", postgres_dsn="postgresql://postgres@127.0.0.1:1/x")
    assert isinstance(read_ledger(config, {}), PostgresLedger)
    (tmp_path / "given.db").touch()
    given = read_ledger(config, {}, tmp_path / "given.db")  # --ledger names a SQLite file
    assert isinstance(given, SqliteLedger) and given.path == str(tmp_path / "given.db")
    with pytest.raises(ConfigError, match=r"no ledger at .*typo\.db"):
        read_ledger(config_for(tmp_path / "typo.db"), {})
    assert not (tmp_path / "typo.db").exists()
