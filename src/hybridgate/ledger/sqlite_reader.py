"""The read half of the SQLite ledger: short-lived connections running ``rollups``' SELECTs.

Layer 5, the ``Ledger`` read methods for ``SqliteLedger`` (which inherits them), used by
``hybridgate usage``, ``tco``/``decide``, ``replay --from-ledger``, budget seeding and the
dashboard. Each call opens the file, runs its queries and closes it, so readers in other processes
see what the gateway's writer committed (WAL mode). It never creates the file or writes: a
missing file or a file without the ``requests`` table reads as an empty ledger.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from typing import Any, TypeVar

from hybridgate.ledger import rollups
from hybridgate.ledger.base import Traffic
from hybridgate.ledger.records import row_to_dict
from hybridgate.ledger.rollups import ANY_ROW, RowFilter

T = TypeVar("T")


class SqliteReader:
    """Reads the ledger file at ``path``; every method is one short read."""

    def __init__(self, path: str) -> None:
        self.path = path

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
