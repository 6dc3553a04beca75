"""The SQLite ledger's writer process: rows in on stdin, committed in batches, counts out on stdout.

Why a process: a batch costs a few ms of CPU, and on the event loop's core any thread of the
gateway that runs it delays the requests that arrive meanwhile (the p99 at concurrency 1,
docs/benchmarks.md). Linux lets a thread give its core up the moment anything else wants it
(``SCHED_IDLE``), but a thread of the gateway's own process would then hold the GIL while it waits
for a core, and the event loop with it. This process has its own interpreter, so its writer can be
``SCHED_IDLE``: it only ever runs on CPU time nobody else wants.

Two threads:

- the *idle writer* (``SCHED_IDLE``) takes each batch and commits it: all the work, normally;
- the *reader* (the main thread, ``nice`` +10) reads frames from the gateway and queues them. An
  idle-class thread can wait for a core for as long as the machine stays busy, and an unprivileged
  process cannot lift it back (``RLIMIT_NICE``); so when the oldest queued batch has waited
  ``RESCUE_AFTER_S``, the reader writes it itself, at its normal (if nicer) priority: a busy
  machine delays rows by about that long, never drops them for want of CPU.

Wire (both ways little-endian): the gateway sends frames of ``<I length>`` + ``marshal`` of a list
of row tuples, and closes stdin to stop; this process answers each batch with ``<II handled lost>``
once it is committed (``lost``: rows SQLite refused, written again one by one so a bad row costs
only itself). At end of input every queued batch is written, then the process exits.

Run as a script (``python -I -S sqlite_writer.py PATH INSERT ID_INDEX RETENTION_DAYS``), it imports
only the standard library, so it starts in a few tens of ms; ``store.SqliteLedger`` starts it.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import marshal
import os
import select
import signal
import sqlite3
import struct
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

FRAME = struct.Struct("<I")
ACK = struct.Struct("<II")
RESCUE_AFTER_S = 1.0
PURGE_EVERY_S = 3600.0
READER_NICE = 10  # the reader's (and any rescued batch's) priority, below the gateway's loop

logger = logging.getLogger("hybridgate.ledger.sqlite_writer")

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


def connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=5.0, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL is durable across application crashes in WAL mode; only power loss may drop the tail.
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class RowWriter:
    """One connection: a batch of rows in one transaction (row by row when that fails), and the
    retention purge at most every ``PURGE_EVERY_S``."""

    def __init__(self, path: str, insert: str, id_index: int, retention_days: float | None) -> None:
        self.path = path
        self._insert = insert
        self._id_index = id_index
        self._retention_days = retention_days
        self._next_purge = 0.0
        self._conn = connect(path)

    def write(self, rows: Sequence[tuple[Any, ...]]) -> int:
        """Commit ``rows``; the number lost (a bad row, or the file failing)."""
        if not rows:
            return 0
        try:
            with self._conn:
                self._conn.executemany(self._insert, rows)
            return 0
        except Exception:
            # One bad record must not cost the others (other tenants' rows): write them one by one.
            logger.warning("ledger: a batch of %d records failed; writing them one by one", len(rows))
            return self._write_each(rows)

    def _write_each(self, rows: Sequence[tuple[Any, ...]]) -> int:
        lost = 0
        try:
            with self._conn:
                for row in rows:
                    try:
                        self._conn.execute(self._insert, row)
                    except _BAD_ROW:
                        request = row[self._id_index]
                        logger.exception("ledger: could not write request %r to %s", request, self.path)
                        lost += 1
        except Exception:  # the file itself failed (disk full, I/O): the whole batch is lost
            logger.exception("ledger: could not write %d records to %s", len(rows), self.path)
            lost = len(rows)
        return lost

    def purge(self) -> None:
        """Delete rows older than ``retention_days``: at the first call, then every PURGE_EVERY_S."""
        if self._retention_days is None or time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + PURGE_EVERY_S
        cutoff = time.time() - self._retention_days * 86400
        try:
            with self._conn:
                self._conn.execute("DELETE FROM requests WHERE ts < ?", (cutoff,))
        except sqlite3.Error:
            logger.exception("ledger: could not delete expired rows from %s", self.path)

    def close(self) -> None:
        self._conn.close()


class WriterProcess:
    """The process's two threads around one ``RowWriter`` (see the module docstring)."""

    def __init__(
        self, rows: RowWriter, source: int, acks: int, rescue_after_s: float = RESCUE_AFTER_S
    ) -> None:
        self._rows = rows
        self._source = source
        self._acks = acks
        self._rescue_after_s = rescue_after_s
        self._pending = bytearray()  # read, not yet a whole frame
        self._queued: collections.deque[tuple[float, bytes]] = collections.deque()
        self._ready = threading.Condition()
        self._ending = False
        self._db = threading.Lock()  # one batch at a time, whichever thread writes it

    def run(self) -> None:
        """Read until the gateway closes its end, then write what is queued and return."""
        lower_priority(READER_NICE)
        idle = threading.Thread(target=self._idle_writer, name="ledger-idle-writer", daemon=True)
        idle.start()
        self._rows.purge()
        while (frame := self._next_frame()) is not None:
            with self._ready:
                self._queued.append((time.monotonic(), frame))
                self._ready.notify()
            self._rescue(time.monotonic() - self._rescue_after_s)
        with self._ready:
            self._ending = True
            self._ready.notify()
        while self._write_next():  # the end: everything left, at the reader's priority
            pass
        self._rows.close()

    def _next_frame(self) -> bytes | None:
        """The next frame's payload; None at end of input. Waits at most ``rescue_after_s`` / 4 at
        a time, to rescue batches the idle writer has not got to."""
        while True:
            if len(self._pending) >= FRAME.size:
                (length,) = FRAME.unpack_from(self._pending)
                end = FRAME.size + length
                if len(self._pending) >= end:
                    frame = bytes(self._pending[FRAME.size : end])
                    del self._pending[:end]
                    return frame
            if select.select([self._source], [], [], self._rescue_after_s / 4)[0]:
                chunk = os.read(self._source, 1 << 16)
                if not chunk:
                    return None  # the gateway closed its end (a partial frame is a dead sender's)
                self._pending += chunk
            else:
                self._rescue(time.monotonic() - self._rescue_after_s)

    def _rescue(self, older_than: float) -> None:
        while True:
            with self._ready:
                if not self._queued or self._queued[0][0] > older_than:
                    return
            self._write_next()

    def _idle_writer(self) -> None:
        idle_priority()
        while True:
            with self._ready:
                self._ready.wait_for(lambda: bool(self._queued) or self._ending)
                if self._ending:
                    return  # the reader writes the rest
            self._write_next()

    def _write_next(self) -> bool:
        """Write the oldest queued batch, if any, and tell the gateway."""
        with self._db:
            with self._ready:
                if not self._queued:
                    return False
                _, frame = self._queued.popleft()
            rows = marshal.loads(frame)
            lost = self._rows.write(rows)
            self._rows.purge()
            os.write(self._acks, ACK.pack(len(rows), lost))
        return True


def lower_priority(step: int) -> None:
    """Raise the calling thread's nice value by ``step`` (Linux: per thread; a no-op elsewhere)."""
    if sys.platform != "linux":
        return
    thread = threading.get_native_id()
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + step))


def idle_priority() -> None:
    """Put the calling thread in Linux's idle class; elsewhere as far down as nice goes."""
    policy = getattr(os, "SCHED_IDLE", None)
    try:
        if policy is None:
            raise OSError("no SCHED_IDLE here")
        os.sched_setscheduler(0, policy, os.sched_param(0))
    except OSError:
        lower_priority(19)


def main(argv: Sequence[str]) -> int:
    path, insert, id_index, retention = argv
    # Its life is its input: the gateway closes it to stop this process, and a gateway that dies
    # closes it too. A Ctrl-C or a SIGTERM sent to the whole group must not cut the rows it holds
    # while the gateway drains.
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    logging.basicConfig(stream=sys.stderr, format="hybridgate ledger writer: %(levelname)s %(message)s")
    rows = RowWriter(path, insert, int(id_index), float(retention) if retention else None)
    WriterProcess(rows, sys.stdin.fileno(), sys.stdout.fileno()).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
