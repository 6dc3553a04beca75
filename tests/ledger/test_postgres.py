"""PostgresLedger against a real PostgreSQL server (Debian's, the session's, on loopback: tests/conftest.py).

Each test gets a database of its own on that server; the outage tests start a server of their
own, since they stop and restart it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest
from pydantic import ValidationError

from hybridgate.config import GatewayConfig
from hybridgate.errors import ConfigError
from hybridgate.ledger import build_ledger, migrations
from hybridgate.ledger import postgres as postgres_module
from hybridgate.ledger.migrations import SCHEMA_VERSION, migrate
from hybridgate.ledger.postgres import PostgresLedger
from hybridgate.ledger.records import COLUMNS, LedgerRecord
from hybridgate.ledger.spool import Spool
from hybridgate.ledger.store import SqliteLedger
from tests.postgres_server import execute, run_postgres
from tests.waiting import wait_until


def fetch(postgres_dsn: str, sql: str) -> list[tuple[object, ...]]:
    async def run() -> list[tuple[object, ...]]:
        conn = await asyncpg.connect(postgres_dsn)
        try:
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    return asyncio.run(run())


def request_ids(postgres_dsn: str) -> list[str]:
    return sorted(str(r[0]) for r in fetch(postgres_dsn, "SELECT request_id FROM requests"))


def replayed(store: PostgresLedger) -> Callable[[], bool]:
    """Whether ``store`` is healthy again with nothing left in its spool."""
    return lambda: store.degraded_reason() is None and not store.spool.has_rows()


def rec(i: int, **changes: object) -> LedgerRecord:
    fields: dict[str, object] = {
        "ts": time.time(),
        "request_id": f"r-{i}",
        "route": ["local", "cloud"][i % 2],
        "model": "m",
        "prompt_tokens": 10 + i,
        "completion_tokens": i,
        "latency_ms": float(5 * i + 1),
        "ttft_ms": float(i) if i % 3 else None,
        "cost_usd": 0.001 * i,
        "status": 500 if i % 7 == 0 else 200,
        "reasons": ["rule:x"],
        "attempts": ["local:ok"],
        "stream": i % 2 == 1,
    }
    return LedgerRecord(**(fields | changes))  # type: ignore[arg-type]


def rounded(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """Sums of floats differ in the last bits with the order they were added in."""
    return [{k: round(v, 9) if isinstance(v, float) else v for k, v in row.items()} for row in rows]


def ledger(
    postgres_dsn: str, tmp_path: Path, *, retention_days: float | None = None, timeout_s: float = 2.0
) -> PostgresLedger:
    spool = str(tmp_path / "spool.jsonl")
    return PostgresLedger(
        postgres_dsn,
        spool_path=spool,
        flush_interval_s=0.02,
        retry_s=0.05,
        retention_days=retention_days,
        timeout_s=timeout_s,
    )


def test_rows_written_and_rolled_up_like_the_sqlite_ledger(postgres_dsn: str, tmp_path: Path) -> None:
    records = [rec(i) for i in range(1, 60)]
    pg, lite = ledger(postgres_dsn, tmp_path), SqliteLedger(str(tmp_path / "l.db"), flush_interval_s=0.02)
    for store in (pg, lite):
        store.start()
        for r in records:
            store.record(r)
        assert store.flush(timeout=10)
    assert request_ids(postgres_dsn) == sorted(r.request_id for r in records)
    for by in ("route", "model", "day", "api_key"):
        assert rounded(pg.usage(by)) == rounded(lite.usage(by)), by
    assert pg.recent(3) == lite.recent(3)
    assert pg.degraded_reason() is None and pg.dropped == 0
    pg.close()
    lite.close()


def test_migrations_are_ordered_and_idempotent(postgres_dsn: str, tmp_path: Path) -> None:
    for _ in range(2):  # a second replica starting on the same database changes nothing
        store = ledger(postgres_dsn, tmp_path)
        store.start()
        store.close()
    assert fetch(postgres_dsn, "SELECT version FROM schema_version ORDER BY version") == [
        (v,) for v in range(1, SCHEMA_VERSION + 1)
    ]

    async def again() -> int:
        conn = await asyncpg.connect(postgres_dsn)
        try:
            return await migrate(conn)
        finally:
            await conn.close()

    assert asyncio.run(again()) == SCHEMA_VERSION
    columns = fetch(
        postgres_dsn, "SELECT column_name FROM information_schema.columns WHERE table_name = 'requests'"
    )
    # A new LedgerRecord field fails here until a migration adds its column.
    assert {str(c[0]) for c in columns} == {"id", "row_key", *COLUMNS}
    indexes = {
        str(r[0])
        for r in fetch(postgres_dsn, "SELECT indexname FROM pg_indexes WHERE tablename = 'requests'")
    }
    assert {"requests_ts", "requests_api_key_ts", "requests_feature_ts", "requests_route_ts"} <= indexes


def test_a_newer_schema_or_a_missing_database_refuses_to_start(postgres_dsn: str, tmp_path: Path) -> None:
    ledger(postgres_dsn, tmp_path).start()
    asyncio.run(execute(postgres_dsn, "INSERT INTO schema_version (version) VALUES ($1)", SCHEMA_VERSION + 1))
    with pytest.raises(ConfigError, match="schema version"):
        ledger(postgres_dsn, tmp_path).start()
    with pytest.raises(ConfigError, match="refused"):
        ledger(postgres_dsn.rsplit("/", 1)[0] + "/no_such_db", tmp_path).start()


def test_a_bad_row_is_dropped_and_the_rest_of_its_batch_kept(postgres_dsn: str, tmp_path: Path) -> None:
    store = ledger(postgres_dsn, tmp_path)
    store.start()
    for i in range(18):  # one batch: 17 tenants' rows and one PostgreSQL cannot encode
        store.record(rec(i, cohort="\ud800") if i == 9 else rec(i, api_key_id=f"key_{i}"))
    assert store.flush(timeout=10)
    assert request_ids(postgres_dsn) == sorted(f"r-{i}" for i in range(18) if i != 9)
    assert store.dropped == 1 and store.degraded_reason() is None
    store.close()


def test_numbers_from_an_upstream_are_clamped_into_bigint(postgres_dsn: str, tmp_path: Path) -> None:
    store = ledger(postgres_dsn, tmp_path)
    store.start()
    store.record(rec(1, prompt_tokens=18446744073709551615, cost_usd=float("nan")))
    store.record(rec(2, completion_tokens=2**70))
    assert store.flush(timeout=10)
    rows = fetch(
        postgres_dsn, "SELECT request_id, prompt_tokens, completion_tokens, cost_usd FROM requests ORDER BY 1"
    )
    assert rows == [("r-1", 2**63 - 1, 1, 0.0), ("r-2", 12, 2**63 - 1, 0.002)]
    assert store.dropped == 0
    store.close()


def test_nul_characters_in_text_fields_are_replaced_not_a_reason_to_drop_the_row(
    postgres_dsn: str, tmp_path: Path
) -> None:
    store = ledger(postgres_dsn, tmp_path)
    store.start()
    store.record(rec(1, feature="a\x00b", cohort="\x00", cost_usd=5.0, api_key_id="key_x", reasons=["r\x00"]))
    store.record(rec(2, request_id="r-\x00"))
    assert store.flush(timeout=10)
    assert store.dropped == 0
    sql = "SELECT request_id, feature, cohort, cost_usd, reasons FROM requests ORDER BY request_id"
    rows = fetch(postgres_dsn, sql)
    assert rows == [
        ("r-1", "a\ufffdb", "\ufffd", 5.0, '["r\\u0000"]'),
        ("r-\ufffd", None, None, 0.002, '["rule:x"]'),
    ]
    by_key = {row["api_key"]: row["cost_usd"] for row in store.usage("api_key")}
    assert by_key["key_x"] == 5.0  # what budgets are seeded from at start-up
    store.close()


class HeldLock:
    """Another session holding a lock in an open transaction: PostgreSQL answers, but waits."""

    def __init__(
        self, postgres_dsn: str, statement: str = "LOCK TABLE requests IN ACCESS EXCLUSIVE MODE"
    ) -> None:
        self.dsn = postgres_dsn
        self.statement = statement
        self.locked = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=asyncio.run, args=(self._hold(),))

    async def _hold(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            async with conn.transaction():
                await conn.execute(self.statement)
                self.locked.set()
                await asyncio.to_thread(self.release.wait)
        finally:
            await conn.close()

    def __enter__(self) -> HeldLock:
        self.thread.start()
        assert self.locked.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join()


def test_close_spools_instead_of_waiting_on_a_hung_server(
    postgres_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Writes that would wait an hour on their own: only the close deadline can end them.
    monkeypatch.setattr(postgres_module, "CLOSE_TIMEOUT_S", 0.5)
    store = ledger(postgres_dsn, tmp_path, timeout_s=3600.0)
    store.start()
    with HeldLock(postgres_dsn):  # writes to `requests` hang
        store.record(rec(0))
        assert not store.flush(timeout=0.3)  # this write is in flight, stuck on the lock
        for i in range(1, 10):
            store.record(rec(i))
        closer = threading.Thread(target=store.close)
        closer.start()
        closer.join(60)
        assert not closer.is_alive(), "close() waited on the hung write"
        assert store.spool.count() == 10 and store.dropped == 0
    restarted = ledger(postgres_dsn, tmp_path)
    restarted.start()
    restarted.close()
    assert request_ids(postgres_dsn) == sorted(f"r-{i}" for i in range(10))


def test_a_migration_stuck_on_the_lock_degrades_start_up_instead_of_hanging(
    postgres_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrations, "LOCK_TIMEOUT_S", 0.2)
    # Another replica's migration that never finishes holds the migration lock.
    with HeldLock(postgres_dsn, f"SELECT pg_advisory_xact_lock({migrations.LOCK_KEY})"):
        store = ledger(postgres_dsn, tmp_path)
        store.start()
        assert store.degraded_reason() is not None
        store.record(rec(1))
        assert store.flush(timeout=10) and store.spool.count() == 1
    store.close()  # the lock is gone: the spool is replayed
    assert request_ids(postgres_dsn) == ["r-1"]


def test_unreadable_spool_lines_are_counted_as_dropped_and_kept_aside(
    postgres_dsn: str, tmp_path: Path
) -> None:
    spool = Spool(str(tmp_path / "spool.jsonl"))
    spool.append([("key-1", rec(1))])
    with open(spool.path, "a") as file:
        file.write('{"key": "key-2", "record": {"ts": 1.0, "request_id": "r-2", "from_the_future": 1}}\n')
    spool.append([("key-3", rec(3))])
    store = ledger(postgres_dsn, tmp_path)
    store.start()
    assert request_ids(postgres_dsn) == ["r-1", "r-3"]
    assert store.dropped == 1 and "from_the_future" in Path(spool.rejected_path).read_text()
    store.close()


def test_retention_deletes_only_rows_older_than_the_limit(postgres_dsn: str, tmp_path: Path) -> None:
    old = time.time() - 10 * 86400
    writer = ledger(postgres_dsn, tmp_path)
    writer.start()
    for i in range(3):
        writer.record(rec(i, ts=old, request_id=f"old-{i}"))
        writer.record(rec(i, request_id=f"new-{i}"))
    writer.close()
    keeper = ledger(postgres_dsn, tmp_path, retention_days=5)
    keeper.start()  # purges at start-up, then every purge_every_s
    assert request_ids(postgres_dsn) == ["new-0", "new-1", "new-2"]
    keeper.close()


def test_spool_replay_at_start_up_never_duplicates(postgres_dsn: str, tmp_path: Path) -> None:
    spool = Spool(str(tmp_path / "spool.jsonl"))
    keyed = [(f"key-{i}", rec(i)) for i in range(10)]
    for _ in range(2):  # the same rows spooled twice: a commit whose acknowledgement was lost
        spool.append(keyed)
        store = ledger(postgres_dsn, tmp_path)
        store.start()
        assert not spool.has_rows()
        store.close()
    assert request_ids(postgres_dsn) == sorted(f"r-{i}" for i in range(10))


def test_outage_spools_reports_degraded_and_replays_everything(
    tmp_path: Path, postgres_template: Path
) -> None:
    with run_postgres(postgres_template) as pg:
        store = ledger(pg.dsn, tmp_path)
        store.start()
        for i in range(50):
            store.record(rec(i))
        assert store.flush(timeout=10)
        pg.stop()
        for i in range(50, 120):
            store.record(rec(i))
        assert store.flush(timeout=10)  # spooled counts as handled: durable on local disk
        assert store.degraded_reason() is not None and "spooled" in str(store.degraded_reason())
        assert store.spool.count() == 70
        pg.start()
        wait_until(replayed(store), 15, "the spool to be replayed")
        store.close()
        assert request_ids(pg.dsn) == sorted(f"r-{i}" for i in range(120))
        assert store.dropped == 0


def test_killed_server_and_shutdown_while_down_lose_nothing(tmp_path: Path, postgres_template: Path) -> None:
    with run_postgres(postgres_template) as pg:
        store = ledger(pg.dsn, tmp_path)
        store.start()
        store.record(rec(0))
        assert store.flush(timeout=10)
        pg.kill()
        for i in range(1, 20):
            store.record(rec(i))
        store.close()  # drains into the spool: PostgreSQL is still down
        assert store.spool.count() == 19
        pg.start()
        restarted = ledger(pg.dsn, tmp_path)
        restarted.start()  # replays the spool before taking new records
        restarted.close()
        assert request_ids(pg.dsn) == sorted(f"r-{i}" for i in range(20))


def test_unreachable_at_start_up_degrades_instead_of_failing(tmp_path: Path, postgres_template: Path) -> None:
    with run_postgres(postgres_template) as pg:
        pg.stop()
        store = ledger(pg.dsn, tmp_path)
        store.start()
        assert store.degraded_reason() is not None
        store.record(rec(1))
        assert store.flush(timeout=10)
        pg.start()
        store.close()  # the last batch reconnects, replays the spool and stores
        assert request_ids(pg.dsn) == ["r-1"]


def test_the_postgres_store_needs_a_postgres_section() -> None:
    base = {"backends": {"b": {"type": "embedded"}}, "routes": {"auto": {"try": ["b"]}}}
    with pytest.raises(ValidationError, match=r"needs a \[postgres\] section"):
        GatewayConfig.model_validate(base | {"ledger": {"store": "postgres"}})
    config = GatewayConfig.model_validate(base | {"ledger": {"store": "postgres"}, "postgres": {}})
    assert isinstance(build_ledger(config, {}), PostgresLedger)


def test_a_hung_server_degrades_and_spools_within_the_timeout_then_replays_once(
    tmp_path: Path, postgres_template: Path
) -> None:
    with run_postgres(postgres_template) as pg:
        store = ledger(pg.dsn, tmp_path, timeout_s=0.5)
        store.start()
        store.record(rec(0))
        assert store.flush(timeout=10)
        pg.pause()  # a real server, stopped: its connections stay open and nothing is answered
        try:
            for i in range(1, 30):
                store.record(rec(i))
            # the batch in flight gives up after timeout_s and goes to the spool, as on a refusal
            assert store.flush(timeout=3), "a write to a hung PostgreSQL held the ledger up"
            assert store.degraded_reason() is not None and "spooled" in str(store.degraded_reason())
            assert store.spool.count() == 29 and store.dropped == 0
        finally:
            pg.resume()
        wait_until(replayed(store), 15, "the spool to be replayed")
        store.close()
        assert request_ids(pg.dsn) == sorted(f"r-{i}" for i in range(30))


@pytest.mark.parametrize(
    ("ledger_settings", "kind", "batch"),
    [
        ({}, SqliteLedger, 1000),  # a hand-off to the writer process: fewer is a lower c = 1 tail
        ({"store": "postgres"}, PostgresLedger, 200),  # a COPY from a thread of the gateway
        ({"batch_size": 50}, SqliteLedger, 50),
        ({"store": "postgres", "batch_size": 50}, PostgresLedger, 50),
    ],
)
def test_each_store_has_its_own_batch_size_unless_one_is_set(
    tmp_path: Path, ledger_settings: dict[str, object], kind: type[SqliteLedger | PostgresLedger], batch: int
) -> None:
    base = {"backends": {"b": {"type": "embedded"}}, "routes": {"auto": {"try": ["b"]}}, "postgres": {}}
    settings = {"path": str(tmp_path / "l.db"), **ledger_settings}
    config = GatewayConfig.model_validate(base | {"ledger": settings})
    store = build_ledger(config, {})
    assert isinstance(store, (SqliteLedger, PostgresLedger)) and type(store) is kind
    assert store.batch_size == batch
