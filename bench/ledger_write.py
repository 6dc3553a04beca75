"""How fast each ledger store writes, and what ``record()`` costs the caller: docs/ledger.md.

Offline tool, never imported by the gateway. Prints JSON. ``--rows`` records are handed to
``record()`` as fast as one thread can, then ``flush()`` waits until all are stored: SQLite in a
temporary file, PostgreSQL on a throwaway server from Debian's packages on loopback
(tests/postgres_server.py, fsync off, so this is the gateway's side of the cost, not the disk's).

    .venv/bin/python bench/ledger_write.py --rows 50000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hybridgate.ledger.base import Ledger
from hybridgate.ledger.postgres import PostgresLedger
from hybridgate.ledger.records import LedgerRecord
from hybridgate.ledger.store import SqliteLedger
from tests.postgres_server import run_postgres


def records(n: int) -> list[LedgerRecord]:
    now = time.time()
    return [
        LedgerRecord(
            ts=now + i / 1000,
            request_id=f"req_{i:08d}",
            route="auto",
            backend="local",
            model="smollm2",
            prompt_tokens=120,
            completion_tokens=40,
            latency_ms=35.0,
            reasons=["rule:default"],
            attempts=["local:ok"],
        )
        for i in range(n)
    ]


def measure(ledger: Ledger, rows: list[LedgerRecord]) -> dict[str, Any]:
    ledger.start()
    started = time.perf_counter()
    for rec in rows:
        ledger.record(rec)
    handed = time.perf_counter() - started
    assert ledger.flush(timeout=600)
    total = time.perf_counter() - started
    ledger.close()
    return {
        "record_us_per_call": round(handed / len(rows) * 1e6, 2),
        "rows_per_s": round(len(rows) / total),
        "seconds": round(total, 2),
        "dropped": ledger.dropped,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=200)
    args = parser.parse_args()
    rows = records(args.rows)
    result: dict[str, Any] = {"setup": vars(args) | {"cpus": os.cpu_count()}}
    with tempfile.TemporaryDirectory(prefix="hg-ledger-") as tmp:
        sqlite = SqliteLedger(f"{tmp}/l.db", batch_size=args.batch_size)
        result["sqlite"] = measure(sqlite, rows)
        with run_postgres() as pg:
            postgres = PostgresLedger(pg.dsn, spool_path=f"{tmp}/spool.jsonl", batch_size=args.batch_size)
            result["postgres"] = measure(postgres, rows)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
