"""The request ledger in SQLite: written off the hot path in batches, read by the CLI.

Sits at layer 5 of the flow: the pipeline calls ``record()`` once per finished request. That call
only appends the record to a bounded in-memory list (``batches.Batches``, which holds the queueing,
flush and close semantics of both stores); a dedicated writer thread with its own connection takes
a batch and inserts it with ``executemany``; a batch that fails is written again row by row, so a
bad record costs only itself. The database runs in WAL mode so another process (the
``hybridgate usage`` CLI) can read while the gateway writes: each read opens the file, runs
``rollups``' SELECTs and closes it, so it sees what the writer committed. Reads never create the
file or write: a missing file, or one without the ``requests`` table, reads as an empty ledger.
The request path only calls ``record()``, which never blocks or raises.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from typing import Any, TypeVar

from hybridgate.errors import ConfigError
from hybridgate.ledger import rollups
from hybridgate.ledger.base import Traffic
from hybridgate.ledger.batches import BatchedLedger, Batches
from hybridgate.ledger.records import COLUMNS, LedgerRecord, row_to_dict
from hybridgate.ledger.rollups import ANY_ROW, USAGE_GROUPS, RowFilter

logger = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA_VERSION = 5
PURGE_EVERY_S = 3600.0
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

# What one record can cause (a constraint, a value SQLite cannot bind); anything else is the file.
_BAD_ROW = (
    sqlite3.IntegrityError,
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
    sqlite3.DataError,
    ValueError,
    TypeError,
    OverflowError,
)
_INSERT = f"INSERT INTO requests ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"


class SqliteLedger(BatchedLedger):
    """A SQLite-backed ledger. ``start()`` before recording; ``close()`` drains and stops.

    The read methods (``usage``, ``recent``, ``decisions``, ...) are each one short read, for
    ``hybridgate usage``, ``tco``/``decide``, ``replay --from-ledger``, budget seeding and the
    dashboard; ``record``, ``flush``, ``close`` and the counters come from ``BatchedLedger``.
    """

    def __init__(
        self,
        path: str,
        *,
        batch_size: int = 200,
        flush_interval_s: float = 0.5,
        max_queue: int = 100_000,
        retention_days: float | None = None,
    ) -> None:
        self.path = path
        self.batch_size = batch_size
        self.retention_days = retention_days
        self._next_purge = 0.0  # monotonic time of the next retention purge; the writer's alone
        self._batches = Batches(batch_size=batch_size, flush_interval_s=flush_interval_s, max_queue=max_queue)

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

    def start(self) -> None:
        """Create the schema (raising here, at start-up, if the file is unusable) and the writer."""
        if self._batches.started:
            return
        with closing(_connect(self.path)) as conn:
            _ensure_schema(conn, self.path)
            self._purge(conn)
        self._batches.start_writer(self._run)

    def _run(self) -> None:
        conn = _connect(self.path)
        try:
            while True:
                batch, last = self._batches.take(None)
                for start in range(0, len(batch), self.batch_size):
                    self._write(conn, batch[start : start + self.batch_size])
                self._purge(conn)
                self._batches.done(len(batch))
                if last:
                    return
        finally:
            conn.close()

    def _write(self, conn: sqlite3.Connection, batch: list[LedgerRecord]) -> None:
        if not batch:
            return
        try:
            with conn:
                # Rows built one at a time as SQLite takes them: the GIL is released while each
                # row is inserted, so the event loop never waits for a whole batch's conversion.
                conn.executemany(_INSERT, (rec.to_row() for rec in batch))
        except Exception:
            # The writer thread must outlive any bad batch (disk full, a malformed record): if it
            # died, every later record would silently pile up unwritten. One bad record must not
            # cost the others (other tenants' rows): the batch is written again one row at a time.
            logger.warning("ledger: a batch of %d records failed; writing them one by one", len(batch))
            self._write_each(conn, batch)

    def _write_each(self, conn: sqlite3.Connection, batch: list[LedgerRecord]) -> None:
        """Insert row by row in one transaction; a row that fails is logged and counted lost."""
        lost = 0
        try:
            with conn:
                for rec in batch:
                    try:
                        conn.execute(_INSERT, rec.to_row())
                    except _BAD_ROW:
                        logger.exception(
                            "ledger: could not write request %s to %s", rec.request_id, self.path
                        )
                        lost += 1
        except Exception:  # the file itself failed (disk full, I/O): the whole batch is lost
            logger.exception("ledger: could not write %d records to %s", len(batch), self.path)
            lost = len(batch)
        self._batches.lose(lost)

    def _purge(self, conn: sqlite3.Connection) -> None:
        """Delete rows older than ``retention_days``: at start-up, then at most every PURGE_EVERY_S."""
        if self.retention_days is None or time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + PURGE_EVERY_S
        cutoff = time.time() - self.retention_days * 86400
        try:
            with conn:
                conn.execute("DELETE FROM requests WHERE ts < ?", (cutoff,))
        except sqlite3.Error:
            logger.exception("ledger: could not delete expired rows from %s", self.path)


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=5.0)
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL is durable across application crashes in WAL mode; only power loss may drop the tail.
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


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
