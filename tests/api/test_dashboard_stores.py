"""The /ui dashboard's JSON endpoints on a PostgreSQL ledger answer as they do on SQLite.

Two real gateways (the app served by uvicorn on 127.0.0.1), one per store, over the same known
week of traffic: the SQLite file written through ``SqliteLedger``, a database on a real, throwaway
PostgreSQL server written through ``PostgresLedger``. The page itself is covered in a real browser
by test_dashboard.py; here only the JSON it fetches.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hybridgate.ledger.postgres import PostgresLedger
from hybridgate.ledger.store import SqliteLedger
from tests.api.test_dashboard import dashboard_app
from tests.gateway_process import free_port
from tests.ledger.stores import approx_equal
from tests.postgres_server import new_database, run_postgres
from tests.servers import serve_in_thread
from tests.tco.ledger_fixture import Traffic, config_for, fill_store

QUERIES = [
    "usage?by=route",
    "usage?by=cohort&days=2",
    "usage?by=day",
    "timeseries?by=feature",
    "timeseries?by=cohort&days=30",
    "summary",
    "summary?days=1.5",
    "requests?cohort=beta&environment=test",
    "usage?by=feature&cohort=beta&route=auto",
    "summary?environment=test&api_key=nobody",
    "timeseries?by=route&cohort=beta",
]


@pytest.fixture(scope="module")
def gateways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Traffic]]:
    """(SQLite gateway URL, PostgreSQL gateway URL, what was written), the same rows in each."""
    tmp = tmp_path_factory.mktemp("dash-stores")
    with run_postgres() as server:
        dsn = new_database(server)
        traffic = fill_store(SqliteLedger(str(tmp / "ledger.db")))
        fill_store(PostgresLedger(dsn, spool_path=str(tmp / "spool.jsonl")))
        lite = dashboard_app(config_for(tmp / "ledger.db"))
        pg = dashboard_app(config_for(tmp / "unused.db", postgres_dsn=dsn))
        with serve_in_thread(lite) as lite_url, serve_in_thread(pg) as pg_url:
            yield lite_url, pg_url, traffic


def get(url: str, query: str) -> Any:
    reply = httpx.get(f"{url}/ui/api/{query}")
    assert reply.status_code == 200, reply.text
    return reply.json()


@pytest.mark.parametrize("query", QUERIES)
def test_json_endpoints_answer_the_same_on_both_stores(
    gateways: tuple[str, str, Traffic], query: str
) -> None:
    lite_url, pg_url, _ = gateways
    lite, pg = get(lite_url, query), get(pg_url, query)
    assert approx_equal(pg, lite), (pg, lite)


def test_postgres_totals_match_what_was_written(gateways: tuple[str, str, Traffic]) -> None:
    _, pg_url, traffic = gateways
    summary = get(pg_url, "summary?days=7")
    assert summary["requests"] == traffic.requests and summary["escalated"] == traffic.escalated
    assert summary["by_rule"] == {"default": 24, "long-prompt": 24}
    assert summary["cache_hit_rate"] == traffic.cache_hits / traffic.cache_lookups
    assert summary["latency"]["p50_ms"] == pytest.approx(1400.0)
    rows = get(pg_url, "usage?by=route")["rows"]
    assert {r["route"] for r in rows} == {"auto", "frontier"}
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(traffic.cost_usd)
    series = get(pg_url, "timeseries?by=route")["rows"]
    assert sum(r["prompt_tokens"] for r in series) == traffic.prompt_tokens
    # The filters reach PostgreSQL's SQL: cohort, environment and key id each narrow the rows.
    assert len(get(pg_url, "requests?cohort=beta&environment=test")["rows"]) == 24  # the local answers
    assert get(pg_url, "requests?environment=prod")["rows"] == []
    assert get(pg_url, "summary?api_key=nobody")["requests"] == 0


def test_projection_is_measured_from_the_postgres_ledger(gateways: tuple[str, str, Traffic]) -> None:
    lite_url, pg_url, traffic = gateways
    lite, pg = get(lite_url, "projection?days=7"), get(pg_url, "projection?days=7")
    assert pg["measured"]["requests"] == traffic.requests
    assert pg["assumptions"]["sources"]["price"].startswith("ledger")
    assert pg["break_even_daily_tokens"] == lite["break_even_daily_tokens"] == round(8000 / (7.5e-6 * 30), 2)
    # The measured window ends at each request's own clock, so daily rates differ in the last digits.
    assert approx_equal(pg, lite, rel=1e-3), (pg, lite)
    svg = httpx.get(f"{pg_url}/ui/api/projection.svg?days=7")
    assert svg.status_code == 200 and 'id="break-even"' in svg.text


def test_an_unreachable_postgres_ledger_is_503_not_empty(tmp_path: Path) -> None:
    dsn = f"postgresql://postgres@127.0.0.1:{free_port()}/hybridgate"  # nothing listens there
    app = dashboard_app(config_for(tmp_path / "unused.db", postgres_dsn=dsn))
    with serve_in_thread(app) as url:  # the gateway starts degraded: the ledger spools
        for query in ("summary", "usage", "timeseries", "projection"):
            reply = httpx.get(f"{url}/ui/api/{query}")
            assert reply.status_code == 503, (query, reply.text)
            assert "cannot read PostgreSQL at 127.0.0.1" in reply.json()["error"]["message"]
