"""The hand-off between the request path and a ledger's writer thread, for every ledger store.

Layer 5. ``SqliteLedger`` and ``PostgresLedger`` keep their records in ``Batches`` and take the
write half of the ``Ledger`` protocol from ``BatchedLedger``; they differ only in ``start()`` and
in what their writer does with a batch. The semantics, once for both:

- ``add`` (the ledger's ``record()``) runs on the request path: it appends under a lock and never
  blocks or raises. A full queue (``max_queue``) or a closed one drops the record and counts it.
- The writer thread ``take``s everything pending once a batch is full, ``flush_interval_s`` has
  passed since the first record of it arrived, or a flush or close asked. It is woken once per
  batch (the first record after an idle spell, a full batch, ``flush()``, ``close()``), not once
  per record: a wake-up per request cost the event loop's thread more than the append.
- The writer reports each batch with ``done`` once it is stored, spooled, or counted lost
  (``lose``: a failed write), which is what ``flush()`` waits for.
- ``close()`` refuses new records, lets the writer store the last batch and joins it; a ledger
  never started is started then, so what was recorded is still written. After it, ``flush()``
  returns True at once: there is nothing left to wait for.
- ``dropped`` counts records lost for good: queue full, ledger closed, writes that failed.

No I/O here; the writer thread is started with the ledger's own loop as its target, at a lower
CPU priority than the event loop's thread (``WRITER_NICE``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Generic, TypeVar

from hybridgate.ledger.records import LedgerRecord

# How much nicer (lower CPU priority) the writer thread is than the thread that starts it. A
# batch costs a few ms of CPU (~25 us a row in SQLite); on the event loop's core the kernel
# shared it equally with the loop, so every request that arrived during a write took 2-4x as
# long: the p99 at concurrency 1 (docs/benchmarks.md). At +10 the loop gets ~90 % of a shared
# core and preempts the writer when it wakes; the writer still gets ~10 % under full load, more
# than it needs (~4 % at the gateway's top throughput), and all of any idle time.
WRITER_NICE = 10
Item = TypeVar("Item")


class Batches(Generic[Item]):
    """Pending records (``LedgerRecord``, or rows already built from them), the writer thread
    that takes them, and the counters ``flush()`` and ``dropped`` are built on."""

    def __init__(self, *, batch_size: int, flush_interval_s: float, max_queue: int) -> None:
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self._max_queue = max_queue
        self._writer: threading.Thread | None = None
        # One lock guards every field below; the writer waits on `_wake`, flush() on `_progress`.
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._progress = threading.Condition(self._lock)
        self._pending: list[Item] = []
        self._accepted = 0  # records ever appended to _pending
        self._handled = 0  # records the writer has stored, spooled, or counted as dropped
        self._flush_wanted = False
        self._closed = False
        self._dropped = 0

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def depth(self) -> int:
        return len(self._pending)

    @property
    def started(self) -> bool:
        """Whether the writer thread was started (it may have finished since)."""
        return self._writer is not None

    def start_writer(self, run: Callable[[], None]) -> None:
        """Run ``run`` (the ledger's loop of ``take``, store, ``done``) on the writer thread."""
        self._writer = threading.Thread(target=_nicer(run), name="hybridgate-ledger", daemon=True)
        self._writer.start()

    # -- the request path --------------------------------------------------------------------

    def add(self, rec: Item) -> None:
        with self._lock:
            # Checked under the lock so nothing is appended after close() has taken the last batch.
            if self._closed or len(self._pending) >= self._max_queue:
                self._dropped += 1
                return
            self._pending.append(rec)
            self._accepted += 1
            if len(self._pending) in (1, self.batch_size):
                self._wake.notify()

    # -- the writer thread -------------------------------------------------------------------

    def take(self, idle_s: float | None) -> tuple[list[Item], bool]:
        """The next batch (empty after ``idle_s`` with nothing to do), and whether this is the last."""
        with self._lock:
            if not self._wake.wait_for(self._anything, idle_s):
                return [], False
            self._wake.wait_for(self._batch_due, self.flush_interval_s)
            batch, self._pending, self._flush_wanted = self._pending, [], False
            return batch, self._closed

    def done(self, count: int) -> None:
        """``count`` records taken are handled: stored, spooled, or counted lost."""
        with self._lock:
            self._handled += count
            self._progress.notify_all()

    def lose(self, count: int) -> None:
        """Count records the writer could not store (nor spool)."""
        with self._lock:
            self._dropped += count

    # -- flush and close ---------------------------------------------------------------------

    def flush(self, timeout: float | None) -> bool:
        """Wait until everything accepted so far is handled; False if ``timeout`` ran out."""
        if self._closed:
            return True  # close() already drained the queue
        if self._writer is None:
            raise RuntimeError("ledger writer not running; call start() before flush()")
        with self._lock:
            target = self._accepted
            self._flush_wanted = True
            self._wake.notify()
            return self._progress.wait_for(lambda: self._handled >= target, timeout)

    def close(self, start: Callable[[], None]) -> None:
        """Refuse new records, then wait for the writer to handle the last batch and stop.
        ``start`` (the ledger's) starts a writer that never ran when records are pending."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._wake.notify()
            if self._writer is None and not self._pending:
                return
        start()
        assert self._writer is not None
        self._writer.join()

    def _anything(self) -> bool:
        return bool(self._pending) or self._flush_wanted or self._closed

    def _batch_due(self) -> bool:
        return len(self._pending) >= self.batch_size or self._flush_wanted or self._closed


class BatchedLedger(ABC, Generic[Item]):
    """``record``/``flush``/``close`` and their counters for a store whose ``__init__`` sets
    ``_batches`` and whose ``start()`` prepares the store, then ``_batches.start_writer``s."""

    _batches: Batches[Item]

    @property
    def dropped(self) -> int:
        """Records lost for good: queue full, ledger closed, writes the store refused or that failed."""
        return self._batches.dropped

    @property
    def queue_depth(self) -> int:
        return self._batches.depth

    @abstractmethod
    def start(self) -> None:
        """Prepare the store (raising if the configuration cannot work) and start the writer."""

    @abstractmethod
    def record(self, rec: LedgerRecord) -> None:
        """Queue one record for writing. Never blocks, never raises: a full queue drops it."""

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything recorded so far is stored (or spooled). False if ``timeout`` ran out."""
        return self._batches.flush(timeout)

    def close(self) -> None:
        """Store everything queued, then stop the writer. Later ``record()`` calls are dropped."""
        self._batches.close(self.start)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)


def _nicer(run: Callable[[], None]) -> Callable[[], None]:
    """``run`` on a thread that first lowers its own CPU priority by ``WRITER_NICE``."""

    def lowered() -> None:
        lower_thread_priority(WRITER_NICE)
        run()

    return lowered


def lower_thread_priority(step: int) -> None:
    """Raise the calling thread's nice value by ``step`` (at most 19). Linux only: there each
    thread has its own; elsewhere setpriority would lower the whole process."""
    if sys.platform != "linux":
        return
    thread = threading.get_native_id()
    with contextlib.suppress(OSError):  # a sandbox that forbids it: the writer runs as before
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + step))
