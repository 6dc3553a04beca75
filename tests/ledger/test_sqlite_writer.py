"""The SQLite ledger's writer process (``ledger/sqlite_writer.py``): real processes, real files.

The process is what keeps the inserts off the event loop's core and GIL; these tests check that it
really runs in the idle class, that its death loses no later row, and that a writer thread starved
of CPU is rescued by the reader.
"""

from __future__ import annotations

import marshal
import os
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hybridgate.ledger import sqlite_writer
from hybridgate.ledger.records import COLUMNS, LedgerRecord
from hybridgate.ledger.store import _INSERT, SqliteLedger, _ensure_schema
from tests.waiting import wait_until

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="scheduling classes are Linux's")


def rec(i: int, **kw: Any) -> LedgerRecord:
    return LedgerRecord(ts=time.time(), request_id=f"req-{i}", latency_ms=1.0, **kw)


def ids(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as conn:
        return [row[0] for row in conn.execute("SELECT request_id FROM requests ORDER BY id")]


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqliteLedger]:
    store = SqliteLedger(str(tmp_path / "ledger.db"), batch_size=20, flush_interval_s=0.02)
    store.start()
    yield store
    store.close()


@pytest.fixture
def rows(tmp_path: Path) -> sqlite_writer.RowWriter:
    """The writer process's half without the process: a ``RowWriter`` on a fresh ledger file."""
    path = str(tmp_path / "ledger.db")
    with closing(sqlite_writer.connect(path)) as conn:
        _ensure_schema(conn, path)
    return sqlite_writer.RowWriter(path, _INSERT, COLUMNS.index("request_id"), None)


def writer_pid(ledger: SqliteLedger) -> int:
    return ledger._child._process.pid


@linux_only
def test_the_inserts_run_in_another_process_in_the_idle_class(ledger: SqliteLedger) -> None:
    """The threads of the gateway's own process stay in the normal class; the writer process's
    inserting thread is SCHED_IDLE (it takes no CPU anybody else wants), its reader is not."""
    ledger.record(rec(1))
    assert ledger.flush(timeout=10)
    pid = writer_pid(ledger)
    assert pid != os.getpid()
    policies = {tid: os.sched_getscheduler(int(tid)) for tid in os.listdir(f"/proc/{pid}/task")}
    assert sorted(policies.values()) == sorted([os.SCHED_OTHER, os.SCHED_IDLE])
    ours = {os.sched_getscheduler(int(tid)) for tid in os.listdir(f"/proc/{os.getpid()}/task")}
    assert ours == {os.SCHED_OTHER}


def test_a_writer_process_that_dies_is_replaced_and_later_rows_are_written(
    ledger: SqliteLedger, tmp_path: Path
) -> None:
    for i in range(5):
        ledger.record(rec(i))
    assert ledger.flush(timeout=10)
    first = writer_pid(ledger)
    os.kill(first, signal.SIGKILL)
    ledger._child._process.wait()
    for i in range(5, 50):
        ledger.record(rec(i))
    assert ledger.flush(timeout=10)
    assert writer_pid(ledger) != first
    assert ids(tmp_path / "ledger.db") == [f"req-{i}" for i in range(50)]
    assert ledger.dropped == 0


def test_an_idle_process_is_replaced_too_and_flush_does_not_hang(ledger: SqliteLedger) -> None:
    """Killed while nothing is in flight: the feeding thread notices on its own (once a second)."""
    first = writer_pid(ledger)
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: writer_pid(ledger) != first, timeout_s=10, what="a new writer process")
    ledger.record(rec(1))
    assert ledger.flush(timeout=10)
    assert ledger.dropped == 0


@linux_only
def test_a_signal_to_the_whole_group_does_not_cut_the_writer_short(
    ledger: SqliteLedger, tmp_path: Path
) -> None:
    """Ctrl-C or a SIGTERM sent to the gateway's process group reaches the writer too: it keeps
    going until the gateway, draining, closes its input."""
    ledger.record(rec(1))
    assert ledger.flush(timeout=10)  # the writer is past its start-up
    pid = writer_pid(ledger)
    assert os.getpgid(pid) != os.getpgid(0)  # its own group: a Ctrl-C at the terminal misses it
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        os.kill(pid, sig)
    ledger.record(rec(2))
    assert ledger.flush(timeout=10)
    assert writer_pid(ledger) == pid and ledger._child.alive()
    assert ids(tmp_path / "ledger.db") == ["req-1", "req-2"]


def test_a_record_that_cannot_become_a_row_is_dropped_at_once(ledger: SqliteLedger) -> None:
    ledger.record(rec(1, reasons=None))  # a caller bug: list(None)
    ledger.record(rec(2))
    assert ledger.flush(timeout=10)
    assert ledger.dropped == 1


def test_a_value_only_python_knows_costs_only_its_own_row(ledger: SqliteLedger, tmp_path: Path) -> None:
    """A caller bug (an object where a number belongs) reaches the writer's hand-off, not SQLite:
    its row is dropped and counted, the feeding thread goes on, the other rows are written."""
    ledger.record(rec(1))
    ledger.record(rec(2, model=complex(1, 2)))  # SQLite cannot bind it
    ledger.record(rec(3, cost_usd=Decimal("0.1")))  # marshal cannot carry it
    ledger.record(rec(4))
    assert ledger.flush(timeout=10)
    assert ids(tmp_path / "ledger.db") == ["req-1", "req-4"]
    assert ledger.dropped == 2
    ledger.record(rec(5))
    assert ledger.flush(timeout=10)
    assert ids(tmp_path / "ledger.db")[-1] == "req-5"


def test_closing_ends_the_writer_process(tmp_path: Path) -> None:
    store = SqliteLedger(str(tmp_path / "ledger.db"))
    store.start()
    process = store._child._process
    store.record(rec(1))
    store.close()
    assert process.returncode == 0
    assert ids(tmp_path / "ledger.db") == ["req-1"]


def test_a_starved_idle_writer_is_rescued_by_the_reader(
    tmp_path: Path, rows: sqlite_writer.RowWriter
) -> None:
    """The idle writer may get no CPU while the machine is busy: here it never runs at all, and
    every batch is still committed (and acknowledged) by the reader once it has waited."""
    path = tmp_path / "ledger.db"
    from_gateway, to_writer = os.pipe()
    from_writer, to_gateway = os.pipe()
    process = sqlite_writer.WriterProcess(rows, from_gateway, to_gateway, rescue_after_s=0.2)
    process._idle_writer = lambda: None  # type: ignore[method-assign]  # starved: never scheduled
    runner = threading.Thread(target=process.run)
    runner.start()
    try:
        payload = marshal.dumps([rec(i).to_row() for i in range(3)])
        os.write(to_writer, sqlite_writer.FRAME.pack(len(payload)) + payload)
        started = time.monotonic()
        ack = os.read(from_writer, sqlite_writer.ACK.size)  # the gateway's end is still open
        assert sqlite_writer.ACK.unpack(ack) == (3, 0)
        assert time.monotonic() - started >= 0.2  # by the rescue, after it waited
        assert ids(path) == ["req-0", "req-1", "req-2"]
    finally:
        os.close(to_writer)
        runner.join(timeout=10)
        for fd in (from_gateway, from_writer, to_gateway):
            os.close(fd)
    assert not runner.is_alive()


def test_what_is_queued_at_the_end_of_input_is_written_before_the_process_exits(
    tmp_path: Path, rows: sqlite_writer.RowWriter
) -> None:
    path = tmp_path / "ledger.db"
    from_gateway, to_writer = os.pipe()
    from_writer, to_gateway = os.pipe()
    process = sqlite_writer.WriterProcess(rows, from_gateway, to_gateway, rescue_after_s=60)
    process._idle_writer = lambda: None  # type: ignore[method-assign]
    for start in (0, 4):
        payload = marshal.dumps([rec(i).to_row() for i in range(start, start + 4)])
        os.write(to_writer, sqlite_writer.FRAME.pack(len(payload)) + payload)
    os.close(to_writer)
    runner = threading.Thread(target=process.run)  # it lowers its thread's priority: not ours
    runner.start()
    runner.join(timeout=10)  # it returns at end of input, having written both batches itself
    assert not runner.is_alive()
    assert ids(path) == [f"req-{i}" for i in range(8)]
    acks = os.read(from_writer, 2 * sqlite_writer.ACK.size)
    assert list(sqlite_writer.ACK.iter_unpack(acks)) == [(4, 0), (4, 0)]
    for fd in (from_gateway, from_writer, to_gateway):
        os.close(fd)
