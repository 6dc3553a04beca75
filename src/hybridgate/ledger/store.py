"""The request ledger in SQLite: written off the hot path in batches, read by the CLI.

Sits at layer 5 of the flow: the pipeline calls ``record()`` once per finished request. That call
turns the record into its row and appends it to a bounded in-memory list (``batches.Batches``,
which holds the queueing, flush and close semantics of both stores); a feeding thread hands each
batch to a writer *process* (``sqlite_writer``: its own interpreter, at the idle CPU priority, so
its inserts never take the event loop's core or GIL) that inserts it with ``executemany`` and
acknowledges it; a batch that fails is written again row by row, so a bad record costs only itself.
A writer process that dies is replaced; the rows it had not acknowledged are counted lost.

The database runs in WAL mode so another process (the
``hybridgate usage`` CLI) can read while the gateway writes: each read opens the file, runs
``rollups``' SELECTs and closes it, so it sees what the writer committed. Reads never create the
file or write: a missing file, or one without the ``requests`` table, reads as an empty ledger.
The request path only calls ``record()``, which never blocks or raises.
"""

from __future__ import annotations

import contextlib
import logging
import marshal
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from typing import Any, TypeVar

from hybridgate.errors import ConfigError
from hybridgate.ledger import rollups, sqlite_writer
from hybridgate.ledger.base import Traffic
from hybridgate.ledger.batches import BatchedLedger, Batches
from hybridgate.ledger.records import COLUMNS, LedgerRecord, row_to_dict
from hybridgate.ledger.rollups import ANY_ROW, USAGE_GROUPS, RowFilter

logger = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA_VERSION = 5
# Rows per hand-off to the writer process: fewer hand-offs, a lower p99 at c = 1 than 200
# (docs/benchmarks.md, "Throughput and tail latency").
BATCH_SIZE = 1000
# Columns added after version 1, by the version that added them: older files gain them on open.
ADDED_COLUMNS: dict[str, int] = {"saved_usd": 2, "texts": 3, "cached_texts": 3, "egress": 4, "traffic": 5}

COLUMN_TYPES: dict[str, str] = {
    "ts": "REAL NOT NULL",
    "request_id": "TEXT NOT NULL",
    "api": "TEXT NOT NULL",
    "api_key_id": "TEXT",
    "environment": "TEXT NOT NULL",
    "feature": "TEXT",
    "cohort": "TEXT",
    "route": "TEXT",
    "backend": "TEXT",
    "model": "TEXT",
    "reported_model": "TEXT",
    "system_fingerprint": "TEXT",
    "prompt_hash": "TEXT",
    "prompt_text": "TEXT",
    "prompt_tokens": "INTEGER NOT NULL",
    "completion_tokens": "INTEGER NOT NULL",
    "ttft_ms": "REAL",
    "latency_ms": "REAL NOT NULL",
    "cost_usd": "REAL NOT NULL",
    "status": "INTEGER NOT NULL",
    "error_type": "TEXT",
    "stream": "INTEGER NOT NULL",
    "cache": "TEXT",
    "saved_usd": "REAL NOT NULL DEFAULT 0",
    "rule": "TEXT",
    "reasons": "TEXT NOT NULL",
    "attempts": "TEXT NOT NULL",
    "escalations": "INTEGER NOT NULL",
    "wasted_tokens": "INTEGER NOT NULL",
    "wasted_ms": "REAL NOT NULL",
    "pii": "TEXT",
    "privacy": "TEXT",
    "shadow_of": "TEXT",
    "texts": "INTEGER NOT NULL DEFAULT 0",
    "cached_texts": "INTEGER NOT NULL DEFAULT 0",
    "egress": "TEXT NOT NULL DEFAULT '[]'",
    "traffic": "TEXT NOT NULL DEFAULT 'live'",
}
INDEXED = ("ts", "feature", "route", "model", "cohort")
__all__ = ["USAGE_GROUPS", "SqliteLedger"]

_ID_INDEX = COLUMNS.index("request_id")
_INSERT = f"INSERT INTO requests ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"


class SqliteLedger(BatchedLedger[tuple[Any, ...]]):
    """A SQLite-backed ledger. ``start()`` before recording; ``close()`` drains and stops.

    The read methods (``usage``, ``recent``, ``decisions``, ...) are each one short read, for
    ``hybridgate usage``, ``tco``/``decide``, ``replay --from-ledger``, budget seeding and the
    dashboard; ``record``, ``flush``, ``close`` and the counters come from ``BatchedLedger``.
    """

    def __init__(
        self,
        path: str,
        *,
        batch_size: int = BATCH_SIZE,
        flush_interval_s: float = 0.5,
        max_queue: int = 100_000,
        retention_days: float | None = None,
    ) -> None:
        self.path = path
        self.batch_size = batch_size
        self.retention_days = retention_days
        self._batches: Batches[tuple[Any, ...]] = Batches(
            batch_size=batch_size, flush_interval_s=flush_interval_s, max_queue=max_queue
        )
        self._child: _Child  # the writer process, from start()

    def degraded_reason(self) -> str | None:
        """Always None: a local file has no outage to report (failed writes count in ``dropped``)."""
        return None

    # -- reading ---------------------------------------------------------------------------------

    def usage(
        self,
        by: str,
        days: float | None = None,
        traffic: str | None = "live",
        where: RowFilter = ANY_ROW,
    ) -> list[dict[str, Any]]:
        """Totals per ``by`` group (see ``USAGE_GROUPS``) over the last ``days``; None is all time.
        ``traffic`` is the class counted (None: every class)."""
        rollups.check_group(by)
        since = 0.0 if days is None else time.time() - days * 86400
        return self._read(lambda conn: rollups.rollup(conn, by, since, traffic, where), [])

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest ``limit`` rows, newest first, with list columns decoded."""

        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            cur = conn.execute("SELECT * FROM requests ORDER BY ts DESC, id DESC LIMIT ?", (limit,))
            return [row_to_dict(dict(row)) for row in cur.fetchall()]

        return self._read(read, [])

    def daily_series(
        self,
        by: str,
        since: float,
        traffic: str | None = "live",
        where: RowFilter = ANY_ROW,
    ) -> list[dict[str, Any]]:
        rollups.check_group(by)
        return self._read(lambda conn: rollups.daily_series(conn, by, since, traffic, where), [])

    def decisions(
        self,
        since: float,
        traffic: str | None = "live",
        where: RowFilter = ANY_ROW,
    ) -> dict[str, Any]:
        def read(conn: sqlite3.Connection) -> dict[str, Any]:
            counts = rollups.decision_counts(conn, since, traffic, where)
            latency = rollups.latency_percentiles(conn, since, traffic, where)
            return counts | {"latency": latency}

        return self._read(read, rollups.no_decisions())

    def traffic(self, since: float, traffic: str | None = "live") -> Traffic:
        def read(conn: sqlite3.Connection) -> Traffic:
            return rollups.backend_totals(conn, since, traffic), rollups.hourly_tokens(conn, since, traffic)

        empty: Traffic = ([], {})
        return self._read(read, empty)

    def request_log(
        self,
        since: float,
        limit: int,
        traffic: str | None = "live",
        where: RowFilter = ANY_ROW,
    ) -> list[dict[str, Any]]:
        return self._read(lambda conn: rollups.request_log(conn, since, limit, traffic, where), [])

    def reported_models(self, since: float) -> list[dict[str, Any]]:
        return self._read(lambda conn: rollups.reported_models(conn, since), [])

    def logged_prompts(self, limit: int, skip_features: Sequence[str] = ()) -> list[dict[str, Any]]:
        return self._read(lambda conn: rollups.logged_prompts(conn, limit, skip_features), [])

    def _read(self, query: Callable[[sqlite3.Connection], T], empty: T) -> T:
        """``query`` on a short-lived connection, or ``empty`` when there is no ledger to read yet."""
        # Don't create a file: `hybridgate usage --ledger typo.db` should find nothing, not make it.
        if not os.path.exists(self.path):
            return empty
        with closing(sqlite3.connect(self.path, timeout=5.0, isolation_level=None)) as conn:
            conn.row_factory = sqlite3.Row
            found = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='requests'")
            return query(conn) if found.fetchone() else empty

    # -- writing -----------------------------------------------------------------------------

    def record(self, rec: LedgerRecord) -> None:
        """Queue one record's row for the writer process. Never blocks, never raises: a record
        that cannot become a row, or a full queue, is dropped and counted."""
        try:
            row = rec.to_row()  # here, on the caller's thread: ~6 us, no CPU burst elsewhere
        except Exception:
            logger.exception("ledger: could not write request %r to %s", rec.request_id, self.path)
            self._batches.lose(1)
            return
        self._batches.add(row)

    def start(self) -> None:
        """Create the schema (raising here, at start-up, if the file is unusable), the writer
        process and the thread that feeds it."""
        if self._batches.started:
            return
        with closing(sqlite_writer.connect(self.path)) as conn:
            _ensure_schema(conn, self.path)
        self._child = _Child.spawn(self.path, self.retention_days, self._batches)
        self._batches.start_writer(self._run)

    def _run(self) -> None:
        """The feeding thread: each batch to the writer process, which it restarts if it died."""
        while True:
            batch, last = self._batches.take(1.0)
            for start in range(0, len(batch), self.batch_size):
                self._send(batch[start : start + self.batch_size])
            if not self._child.alive():
                self._restart()
            if last:
                self._child.stop()
                return

    def _send(self, rows: list[tuple[Any, ...]]) -> None:
        try:
            payload = marshal.dumps(rows)
        except ValueError:  # a value only Python knows (a Decimal, say): drop its row alone
            rows = self._plain(rows)
            payload = marshal.dumps(rows)
        if not self._child.send(payload, len(rows)):
            self._restart()  # it died before reading this batch, so nothing of it was written
            if not self._child.send(payload, len(rows)):
                self._batches.lose(len(rows))
                self._batches.done(len(rows))

    def _plain(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The rows that ``marshal`` can carry; the others are logged and counted lost."""
        kept = []
        for row in rows:
            try:
                marshal.dumps(row)
            except ValueError:
                logger.exception("ledger: could not write request %r to %s", row[_ID_INDEX], self.path)
                self._batches.lose(1)
                self._batches.done(1)
            else:
                kept.append(row)
        return kept

    def _restart(self) -> None:
        exit = self._child.exit
        logger.error("ledger: the writer process for %s exited (%s); starting another", self.path, exit)
        self._child.stop()
        self._child = _Child.spawn(self.path, self.retention_days, self._batches)


class _Child:
    """One writer process (``sqlite_writer``), and the thread that reads its acknowledgements into
    the ledger's ``Batches``: ``done`` once a batch is committed, ``lose`` for rows it refused."""

    def __init__(self, process: subprocess.Popen[bytes], batches: Batches[tuple[Any, ...]]) -> None:
        self._process = process
        self._batches = batches
        self._lock = threading.Lock()
        self._in_flight = 0  # rows sent and not yet acknowledged
        self._acks = threading.Thread(target=self._read_acks, name="hybridgate-ledger-acks", daemon=True)
        self._acks.start()

    @classmethod
    def spawn(cls, path: str, retention_days: float | None, batches: Batches[tuple[Any, ...]]) -> _Child:
        retention = "" if retention_days is None else repr(retention_days)
        # -I -S: the script imports only the standard library; no site-packages, no environment.
        argv = [sys.executable, "-I", "-S", sqlite_writer.__file__, path, _INSERT, str(_ID_INDEX), retention]
        # Its own process group: a Ctrl-C at the terminal reaches the gateway, which drains and
        # then closes this process's input; the process itself ignores such signals too.
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, process_group=0)
        return cls(process, batches)

    @property
    def exit(self) -> str:
        code = self._process.poll()
        return "running" if code is None else f"exit status {code}"

    def alive(self) -> bool:
        return self._process.poll() is None

    def send(self, payload: bytes, count: int) -> bool:
        """Hand over a batch of ``count`` rows; False if the process is gone (it took none)."""
        assert self._process.stdin is not None
        try:
            with self._lock:
                self._in_flight += count
            self._process.stdin.write(sqlite_writer.FRAME.pack(len(payload)) + payload)
            self._process.stdin.flush()
        except (BrokenPipeError, OSError):
            with self._lock:
                self._in_flight -= count
            return False
        return True

    def stop(self) -> None:
        """Close its input, let it write what it has, and wait; rows it never acknowledged (it
        died) are counted lost, so ``flush()`` does not wait for them."""
        assert self._process.stdin is not None
        with contextlib.suppress(OSError):
            self._process.stdin.close()
        self._process.wait()
        self._acks.join()
        assert self._process.stdout is not None
        self._process.stdout.close()
        with self._lock:
            unacknowledged, self._in_flight = self._in_flight, 0
        if unacknowledged:
            logger.error("ledger: %d records sent to the writer process were not written", unacknowledged)
            self._batches.lose(unacknowledged)
            self._batches.done(unacknowledged)

    def _read_acks(self) -> None:
        assert self._process.stdout is not None
        ack = sqlite_writer.ACK
        while len(data := self._process.stdout.read(ack.size)) == ack.size:
            handled, lost = ack.unpack(data)
            with self._lock:
                self._in_flight -= handled
            if lost:
                self._batches.lose(lost)
            self._batches.done(handled)


def _ensure_schema(conn: sqlite3.Connection, path: str) -> None:
    columns = ",\n".join(f"{name} {COLUMN_TYPES[name]}" for name in COLUMNS)
    indexes = "\n".join(f"CREATE INDEX IF NOT EXISTS requests_{c} ON requests({c});" for c in INDEXED)
    conn.executescript(
        f"""
        CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS requests (id INTEGER PRIMARY KEY, {columns});
        {indexes}
        """
    )
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    if row[0] is None:
        with conn:
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
    elif row[0] > SCHEMA_VERSION:
        raise ConfigError(
            f"ledger {path} has schema version {row[0]} but this hybridgate knows up to "
            f"{SCHEMA_VERSION}; upgrade hybridgate or point ledger.path at another file"
        )
    elif row[0] < SCHEMA_VERSION:
        _migrate(conn, row[0])


def _migrate(conn: sqlite3.Connection, version: int) -> None:
    """Bring a file written by an older hybridgate up to ``SCHEMA_VERSION`` in one transaction."""
    present = {r[1] for r in conn.execute("PRAGMA table_info(requests)")}
    with conn:
        for name, added_in in ADDED_COLUMNS.items():
            if added_in > version and name not in present:
                conn.execute(f"ALTER TABLE requests ADD COLUMN {name} {COLUMN_TYPES[name]}")
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
