"""The same rows in both ledger stores, for the tests of the readers (dashboard, tco, decide, replay).

SQLite is a file written through ``SqliteLedger``; PostgreSQL is a fresh database on a real,
throwaway server (``tests/postgres_server.py``) written through ``PostgresLedger``, exactly as a
gateway would write them. ``approx_equal`` compares two readers' outputs: float sums differ in the
last bits with the order the rows were added in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hybridgate.ledger.base import Ledger
from hybridgate.ledger.postgres import PostgresLedger
from hybridgate.ledger.records import LedgerRecord
from hybridgate.ledger.store import SqliteLedger

STORES = ("sqlite", "postgres")


def open_store(store: str, tmp_path: Path, dsn: str) -> Ledger:
    """A ledger of the given kind: the file ``tmp_path/ledger.db``, or the database at ``dsn``."""
    if store == "sqlite":
        return SqliteLedger(str(tmp_path / "ledger.db"), flush_interval_s=0.02)
    return PostgresLedger(dsn, spool_path=str(tmp_path / "spool.jsonl"), flush_interval_s=0.02)


def fill(ledger: Ledger, rows: Iterable[LedgerRecord]) -> Ledger:
    """Write ``rows`` through the ledger's own writer; returns it closed (reads still work)."""
    ledger.start()
    for row in rows:
        ledger.record(row)
    ledger.close()
    assert ledger.dropped == 0 and ledger.degraded_reason() is None
    return ledger


def approx_equal(left: Any, right: Any, rel: float = 1e-9) -> bool:
    """Equal, with floats compared to ``rel``, recursively through dicts, lists and tuples."""
    if isinstance(left, float) and isinstance(right, float | int) and not isinstance(right, bool):
        return math.isclose(left, right, rel_tol=rel, abs_tol=1e-12)
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(approx_equal(left[k], right[k], rel) for k in left)
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(
            approx_equal(a, b, rel) for a, b in zip(left, right, strict=True)
        )
    return bool(left == right)
