"""SqliteLedger against real SQLite files in tmp_path: batching, draining, concurrent reads."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from hybridgate.errors import ConfigError
from hybridgate.ledger.records import COLUMNS, LedgerRecord
from hybridgate.ledger.rollups import percentile
from hybridgate.ledger.store import COLUMN_TYPES, SCHEMA_VERSION, SqliteLedger
from tests.waiting import wait_until


def rec(i: int = 0, **kw: Any) -> LedgerRecord:
    values: dict[str, Any] = {"ts": time.time(), "request_id": f"req-{i}", "latency_ms": 10.0}
    values.update(kw)
    return LedgerRecord(**values)


def count(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0])


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture
def ledger(db: Path) -> Iterator[SqliteLedger]:
    store = SqliteLedger(str(db), batch_size=50, flush_interval_s=0.05)
    store.start()
    yield store
    store.close()


def test_schema_has_version_indexes_and_wal(db: Path, ledger: SqliteLedger) -> None:
    assert set(COLUMN_TYPES) == set(COLUMNS)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {f"requests_{c}" for c in ("ts", "feature", "route", "model", "cohort")} <= names


def test_version_1_file_gains_the_new_columns_and_keeps_its_rows(db: Path) -> None:
    added = {"saved_usd", "texts", "cached_texts", "egress"}
    old_columns = [c for c in COLUMNS if c not in added]
    with sqlite3.connect(db) as conn:
        cols = ", ".join(f"{c} {COLUMN_TYPES[c]}" for c in old_columns)
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (1)")
        conn.execute(f"CREATE TABLE requests (id INTEGER PRIMARY KEY, {cols})")
        row = rec(1).to_row()
        values = [v for name, v in zip(COLUMNS, row, strict=True) if name not in added]
        conn.execute(
            f"INSERT INTO requests ({', '.join(old_columns)}) VALUES ({', '.join('?' * len(values))})", values
        )
    store = SqliteLedger(str(db))
    store.start()
    store.record(rec(2))
    store.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone() == (SCHEMA_VERSION,)
        columns = "request_id, saved_usd, texts, cached_texts, egress"
        rows = conn.execute(f"SELECT {columns} FROM requests ORDER BY id")
        assert rows.fetchall() == [(rec(1).request_id, 0.0, 0, 0, "[]"), (rec(2).request_id, 0.0, 0, 0, "[]")]


def test_newer_schema_version_is_refused(db: Path) -> None:
    SqliteLedger(str(db)).start()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(ConfigError, match="schema version 99"):
        SqliteLedger(str(db)).start()


def test_full_batch_is_written_before_the_interval(db: Path) -> None:
    store = SqliteLedger(str(db), batch_size=10, flush_interval_s=30.0)
    store.start()
    for i in range(10):
        store.record(rec(i))
    wait_until(lambda: count(db) == 10, 5.0)
    for i in range(5):
        store.record(rec(100 + i))
    assert count(db) == 10  # a partial batch waits for the interval (30 s) or a flush
    assert store.flush(timeout=5.0)
    assert count(db) == 15
    store.close()


def test_a_partial_batch_waits_for_its_interval_not_less(db: Path) -> None:
    """The positive side of "a partial batch waits": it is written, and no sooner than the interval
    after its first record (a writer that wrote partial batches early fails here, fast or slow)."""
    interval_s = 1.0
    store = SqliteLedger(str(db), batch_size=10, flush_interval_s=interval_s)
    store.start()
    started = time.monotonic()
    store.record(rec(0))
    store.record(rec(1))
    wait_until(lambda: count(db) == 2, 10.0, "the partial batch to be written")
    waited = time.monotonic() - started
    assert waited >= interval_s * 0.9, f"a partial batch was written after {waited:.3f}s"
    store.close()


def test_partial_batch_is_written_after_the_interval(db: Path) -> None:
    store = SqliteLedger(str(db), batch_size=1000, flush_interval_s=0.1)
    store.start()
    for i in range(3):
        store.record(rec(i))
    wait_until(lambda: count(db) == 3, 5.0)
    store.close()


def test_close_drains_everything_queued(db: Path) -> None:
    store = SqliteLedger(str(db), batch_size=200, flush_interval_s=10.0)
    store.start()
    for i in range(1000):
        store.record(rec(i))
    store.close()
    assert count(db) == 1000
    assert store.dropped == 0


def test_record_after_close_is_dropped_not_raised(db: Path) -> None:
    store = SqliteLedger(str(db))
    store.start()
    store.close()
    store.record(rec())
    assert store.dropped == 1
    assert store.flush() is True
    assert count(db) == 0


def test_full_queue_drops_and_counts(db: Path) -> None:
    store = SqliteLedger(str(db), max_queue=5)
    for i in range(8):
        store.record(rec(i))  # not started yet: the queue fills up
    assert store.dropped == 3
    store.close()  # close on a never-started ledger still writes what was queued
    assert count(db) == 5


def test_flush_before_start_says_what_to_do(db: Path) -> None:
    with pytest.raises(RuntimeError, match="call start"):
        SqliteLedger(str(db)).flush()


def test_bad_record_loses_its_batch_but_not_the_writer(db: Path, ledger: SqliteLedger) -> None:
    bad = rec(1, reasons=None)  # a caller bug: json can't encode list(None)
    ledger.record(bad)
    ledger.flush(timeout=5.0)
    ledger.record(rec(2))
    assert ledger.flush(timeout=5.0)
    assert count(db) == 1
    assert ledger.dropped == 1


def test_one_bad_row_costs_only_itself_not_the_other_tenants_rows(db: Path) -> None:
    store = SqliteLedger(str(db), batch_size=50, flush_interval_s=0.2)
    store.start()
    tenants = [rec(i, api_key_id=f"key_{i}") for i in range(17)]
    bad = rec(99, api_key_id="key_bad", request_id="bad-\ud800")  # SQLite cannot encode a lone surrogate
    for record in [*tenants[:8], bad, *tenants[8:]]:  # all in one batch
        store.record(record)
    assert store.flush(timeout=5.0)
    store.close()
    with sqlite3.connect(db) as conn:
        keys = {row[0] for row in conn.execute("SELECT api_key_id FROM requests")}
    assert keys == {f"key_{i}" for i in range(17)}
    assert store.dropped == 1


def test_numbers_from_an_upstream_are_clamped_into_what_sqlite_holds(db: Path) -> None:
    store = SqliteLedger(str(db), batch_size=50, flush_interval_s=0.2)
    store.start()
    store.record(rec(1, prompt_tokens=18446744073709551615, completion_tokens=-5, cost_usd=float("nan")))
    store.record(rec(2, api_key_id="key_other", ttft_ms=float("inf"), wasted_tokens=2**80))
    assert store.flush(timeout=5.0)
    store.close()
    with sqlite3.connect(db) as conn:
        sql = "SELECT prompt_tokens, completion_tokens, cost_usd, ttft_ms, wasted_tokens FROM requests"
        rows = conn.execute(sql).fetchall()
    assert rows == [(2**63 - 1, 0, 0.0, None, 0), (0, 0, 0.0, None, 2**63 - 1)]
    assert store.dropped == 0


async def test_aclose_drains(db: Path) -> None:
    store = SqliteLedger(str(db), flush_interval_s=10.0)
    store.start()
    for i in range(20):
        store.record(rec(i))
    await store.aclose()
    assert count(db) == 20


def test_reads_from_another_connection_while_writing(db: Path, ledger: SqliteLedger) -> None:
    total = 2000

    def produce() -> None:
        for i in range(total):
            ledger.record(rec(i, feature=f"f{i % 3}"))
            if i % 100 == 0:
                time.sleep(0.005)

    producer = threading.Thread(target=produce)
    producer.start()
    seen: list[int] = []
    while producer.is_alive():
        rows = ledger.usage("feature")
        seen.append(sum(r["requests"] for r in rows))
        seen.append(count(db))
    producer.join()
    assert ledger.flush(timeout=10.0)
    assert count(db) == total
    assert sum(r["requests"] for r in ledger.usage("feature")) == total
    assert len(seen) > 2


def test_reads_from_another_process_while_the_writer_is_open(db: Path, ledger: SqliteLedger) -> None:
    for i in range(30):
        ledger.record(rec(i, feature="chat", cost_usd=0.5))
    assert ledger.flush(timeout=5.0)
    script = (
        "import json, sys; from hybridgate.ledger.store import SqliteLedger; "
        "print(json.dumps(SqliteLedger(sys.argv[1]).usage('feature', None)))"
    )
    out = subprocess.run([sys.executable, "-c", script, str(db)], capture_output=True, text=True, check=True)
    rows = json.loads(out.stdout)
    assert rows[0]["feature"] == "chat" and rows[0]["requests"] == 30
    assert rows[0]["cost_usd"] == pytest.approx(15.0)


def test_usage_rollup_with_percentiles(db: Path, ledger: SqliteLedger) -> None:
    for i in range(1, 101):  # chat latencies 1..100 ms; two errors
        status = 502 if i in (10, 20) else 200
        ledger.record(rec(i, feature="chat", latency_ms=float(i), status=status, ttft_ms=float(i) / 2))
        ledger.record(rec(1000 + i, feature="chat", latency_ms=0.0, ts=time.time() - 10 * 86400))
    for i in range(4):
        ledger.record(rec(200 + i, feature=None, latency_ms=100.0, prompt_tokens=10, completion_tokens=5))
    ledger.record(rec(300, feature="summarize", latency_ms=7.0, cost_usd=3.0))
    assert ledger.flush(timeout=5.0)

    rows = ledger.usage("feature", days=1)
    assert [r["feature"] for r in rows] == ["summarize", "chat", None]  # costliest first, then busiest
    chat = rows[1]
    assert chat["requests"] == 100 and chat["errors"] == 2
    assert chat["latency_p50_ms"] == pytest.approx(50.5)
    assert chat["latency_p95_ms"] == pytest.approx(95.05)
    assert chat["ttft_mean_ms"] == pytest.approx(25.25)
    untagged = rows[2]
    assert untagged["prompt_tokens"] == 40 and untagged["completion_tokens"] == 20
    assert untagged["ttft_mean_ms"] is None
    assert rows[0]["cost_usd"] == pytest.approx(3.0)

    all_time = {r["feature"]: r for r in ledger.usage("feature", days=None)}
    assert all_time["chat"]["requests"] == 200
    assert all_time["chat"]["latency_p50_ms"] == pytest.approx(0.5)  # between 100 zeros and 1..100


def test_usage_by_day_is_in_date_order(db: Path, ledger: SqliteLedger) -> None:
    day = 86400.0
    base = 1_700_000_000.0  # 2023-11-14 22:13 UTC
    for offset, n in ((0.0, 1), (day, 3), (-day, 2)):
        for i in range(n):
            ledger.record(rec(i, ts=base + offset))
    assert ledger.flush(timeout=5.0)
    rows = ledger.usage("day")
    assert [(r["day"], r["requests"]) for r in rows] == [
        ("2023-11-13", 2),
        ("2023-11-14", 1),
        ("2023-11-15", 3),
    ]


def test_usage_by_api_key_and_unknown_group(db: Path, ledger: SqliteLedger) -> None:
    ledger.record(rec(1, api_key_id="team-a"))
    assert ledger.flush(timeout=5.0)
    assert ledger.usage("api_key")[0]["api_key"] == "team-a"
    with pytest.raises(ValueError, match="choose one of: feature"):
        ledger.usage("colour")


def test_reading_a_missing_ledger_finds_nothing_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    assert SqliteLedger(str(path)).usage("feature", 7) == []
    assert SqliteLedger(str(path)).recent() == []
    assert not path.exists()


def test_recent_is_newest_first_with_decoded_lists(db: Path, ledger: SqliteLedger) -> None:
    for i in range(5):
        ledger.record(rec(i, ts=1000.0 + i, stream=i % 2 == 0, attempts=["local:error:timeout", "openai:ok"]))
    assert ledger.flush(timeout=5.0)
    rows = ledger.recent(3)
    assert [r["request_id"] for r in rows] == ["req-4", "req-3", "req-2"]
    assert rows[0]["attempts"] == ["local:error:timeout", "openai:ok"]
    assert rows[0]["stream"] is True and rows[1]["stream"] is False
    assert LedgerRecord.from_row(rows[0]).reasons == []


def test_percentile_edges() -> None:
    assert percentile([], 50) is None
    assert percentile([4.0], 95) == 4.0
    assert percentile([1.0, 3.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0], 100) == 3.0


def test_records_arriving_while_others_flush_are_all_written(db: Path) -> None:
    # record() and flush() from several threads at once, with an interval far longer than the
    # test: every flush must come back True, and nothing may wait for the interval.
    store = SqliteLedger(str(db), batch_size=1000, flush_interval_s=30.0)
    store.start()
    results: list[bool] = []

    def flusher() -> None:
        for _ in range(20):
            results.append(store.flush(timeout=5.0))

    threads = [threading.Thread(target=flusher) for _ in range(3)]
    for thread in threads:
        thread.start()
    for i in range(200):
        store.record(rec(i))
    for thread in threads:
        thread.join()
    started = time.monotonic()
    assert store.flush(timeout=5.0)
    assert time.monotonic() - started < 1.0
    assert results == [True] * 60
    assert count(db) == 200
    store.close()


def test_an_idle_writer_wakes_for_the_first_record(db: Path) -> None:
    store = SqliteLedger(str(db), batch_size=1000, flush_interval_s=0.05)
    store.start()
    time.sleep(0.2)  # the writer is asleep with nothing to do (set-up: four idle intervals)
    store.record(rec(1))
    wait_until(lambda: count(db) == 1, 2.0)
    assert store.queue_depth == 0
    store.close()


def test_retention_deletes_only_rows_older_than_the_limit(db: Path) -> None:
    writer = SqliteLedger(str(db), flush_interval_s=0.01)
    writer.start()
    for i in range(3):
        writer.record(rec(i, ts=time.time() - 10 * 86400, request_id=f"old-{i}"))
        writer.record(rec(i, request_id=f"new-{i}"))
    writer.close()
    keeper = SqliteLedger(str(db), retention_days=5)
    keeper.start()  # purges at start-up, then at most hourly after a batch
    keeper.close()
    with sqlite3.connect(db) as conn:
        kept = sorted(r[0] for r in conn.execute("SELECT request_id FROM requests"))
    assert kept == ["new-0", "new-1", "new-2"]


def test_version_4_file_gains_the_traffic_class_as_live(db: Path) -> None:
    columns = ", ".join(f"{name} {COLUMN_TYPES[name]}" for name in COLUMN_TYPES if name != "traffic")
    with closing(sqlite3.connect(db)) as conn:
        conn.execute(f"CREATE TABLE requests (id INTEGER PRIMARY KEY, {columns})")
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (4)")
        conn.execute(
            "INSERT INTO requests (ts, request_id, api, environment, prompt_tokens, completion_tokens,"
            " latency_ms, cost_usd, status, stream, reasons, attempts, escalations, wasted_tokens,"
            " wasted_ms) VALUES (1, 'old', 'openai', 'default', 1, 1, 1, 0.5, 200, 0, '[]', '[]', 0, 0, 0)"
        )
        conn.commit()
    ledger = SqliteLedger(str(db))
    ledger.start()
    ledger.close()
    assert [r["traffic"] for r in ledger.recent()] == ["live"]
    assert ledger.usage("traffic")[0]["traffic"] == "live"


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
def test_the_writer_thread_runs_nicer_than_the_thread_that_started_it(db: Path, ledger: SqliteLedger) -> None:
    """The writer shares the event loop's core: its batches must not take half of it from the
    loop (the p99 at concurrency 1). Seen at nice < 10 (a test run at nice 19 stays at 19)."""
    import os

    from hybridgate.ledger.batches import WRITER_NICE

    ledger.record(rec())
    assert ledger.flush(5)
    writer = next(t for t in threading.enumerate() if t.name == "hybridgate-ledger")
    assert writer.native_id is not None
    ours = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert os.getpriority(os.PRIO_PROCESS, writer.native_id) == min(19, ours + WRITER_NICE)
    # and only the writer: the rest of the process (the event loop) keeps its priority
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == ours
