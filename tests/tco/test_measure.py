"""Measuring the workload from a real ledger file written by SqliteLedger (its ``traffic`` view).

The same on PostgreSQL: tests/commands/test_tco_stores.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hybridgate.ledger.store import SqliteLedger
from hybridgate.tco.measure import BURSTY_PEAK_TO_MEAN, peak_to_mean, read_workload, summarise
from tests.tco.ledger_fixture import DAY, fill_ledger

NOW = 1_800_000_000.0


def test_workload_from_the_ledger(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    traffic = fill_ledger(db, now=NOW)
    w = read_workload(SqliteLedger(str(db)), {"local"}, days=None, now=NOW)
    assert w is not None
    tokens = traffic.prompt_tokens + traffic.completion_tokens
    first = NOW - 3 * DAY - 5 * 3600 - 60  # the oldest record the fixture writes
    assert w.days == pytest.approx((NOW - first) / DAY)
    assert w.daily_tokens == pytest.approx(tokens / w.days)
    assert w.requests == traffic.requests
    assert w.input_share == pytest.approx(0.75)
    assert w.local_share == pytest.approx(traffic.local_tokens / tokens)
    assert w.cloud_usd_per_mtok == pytest.approx(7.5)  # 0.0075 USD per 1000 cloud tokens
    assert w.local_tps == pytest.approx(200.0)  # 400 tokens in 2 s per local request
    assert w.avg_prompt_tokens == pytest.approx(traffic.prompt_tokens / traffic.requests)
    assert w.shape == "bursty"  # six busy hours a day, silence in between


def test_days_window_and_short_windows_count_as_one_day(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    fill_ledger(db, now=NOW)
    last_day = read_workload(SqliteLedger(str(db)), {"local"}, days=0.5, now=NOW)
    assert last_day is not None
    assert last_day.requests == 12  # the newest day's six slots, two requests each
    assert last_day.days == 1.0  # half a day of traffic is not doubled into a daily rate
    assert last_day.daily_tokens == pytest.approx(6 * 1400)
    assert last_day.shape == "unknown"  # under a day of hours says nothing about shape


def test_no_data_is_none_never_zero(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    SqliteLedger(str(db)).start()  # schema, no rows
    assert read_workload(SqliteLedger(str(db)), set(), days=None, now=NOW) is None
    fill_ledger(db, now=NOW - 30 * DAY)
    # All traffic is older than the window.
    assert read_workload(SqliteLedger(str(db)), set(), days=7, now=NOW) is None


def test_missing_ledger_is_no_data_and_is_not_created(tmp_path: Path) -> None:
    db = tmp_path / "typo.db"  # the CLI refuses a missing --ledger file first (read_ledger)
    assert read_workload(SqliteLedger(str(db)), set(), days=None, now=NOW) is None
    assert not db.exists()


def test_a_file_without_the_requests_table_is_no_data(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x)")
    assert read_workload(SqliteLedger(str(db)), set(), days=None, now=NOW) is None


def test_non_positive_days_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--days must be positive"):
        read_workload(SqliteLedger(str(tmp_path / "x.db")), set(), days=0, now=NOW)


def test_unpriced_cloud_traffic_has_no_measured_price() -> None:
    rows = [
        {"backend": "cloud", "requests": 2, "prompt_tokens": 100, "completion_tokens": 50, "cost_usd": 0.0,
         "served_tokens": 150, "busy_s": 1.0, "first_ts": NOW - 10, "last_ts": NOW},
    ]  # fmt: skip
    w = summarise(rows, {}, set(), since=0.0, now=NOW)
    assert w is not None
    assert w.cloud_usd_per_mtok is None and w.local_tps is None and w.local_share == 0.0


def test_peak_to_mean_counts_silent_hours() -> None:
    steady = dict.fromkeys(range(48), 1000)
    assert peak_to_mean(steady) == 1.0
    spiky = {0: 10, 47: 10, 20: 1000}
    ratio = peak_to_mean(spiky)
    assert ratio is not None and ratio > BURSTY_PEAK_TO_MEAN
    assert ratio == pytest.approx(1000 / (1020 / 48))
    assert peak_to_mean(dict.fromkeys(range(10), 5)) is None
    assert peak_to_mean({}) is None
