"""The hand-off between the request path and a ledger's writer thread: a bounded list of records.

Layer 5. ``add`` runs on the request path: it appends under a lock and never blocks or raises (a
full queue drops the record and counts it). The writer ``take``s everything pending once a batch
is full, ``flush_interval_s`` has passed since the first record of it arrived, or a flush or close
asked, and reports what it handled with ``done`` so ``wait_handled`` (``flush()``) can return. The
writer is woken once per batch, not once per record. Used by ``PostgresLedger``; no I/O here.
"""

from __future__ import annotations

import threading

from hybridgate.ledger.records import LedgerRecord


class Batches:
    """Pending records and the counters ``flush()`` and ``dropped`` are built on."""

    def __init__(self, *, batch_size: int, flush_interval_s: float, max_queue: int) -> None:
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self._max_queue = max_queue
        # One lock guards every field below; the writer waits on `_wake`, flush() on `_progress`.
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._progress = threading.Condition(self._lock)
        self._pending: list[LedgerRecord] = []
        self._accepted = 0  # records ever appended to _pending
        self._handled = 0  # records the writer has stored, spooled, or counted as dropped
        self._flush_wanted = False
        self.closed = False
        self._dropped = 0

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def depth(self) -> int:
        return len(self._pending)

    def add(self, rec: LedgerRecord) -> None:
        with self._lock:
            # Checked under the lock so nothing is appended after close() has taken the last batch.
            if self.closed or len(self._pending) >= self._max_queue:
                self._dropped += 1
                return
            self._pending.append(rec)
            self._accepted += 1
            if len(self._pending) in (1, self.batch_size):
                self._wake.notify()

    def lose(self, count: int) -> None:
        """Count records the writer could neither store nor spool."""
        with self._lock:
            self._dropped += count

    def take(self, idle_s: float | None) -> tuple[list[LedgerRecord], bool]:
        """The next batch (empty after ``idle_s`` with nothing to do), and whether this is the last."""
        with self._lock:
            if not self._wake.wait_for(self._anything, idle_s):
                return [], False
            self._wake.wait_for(self._batch_due, self.flush_interval_s)
            batch, self._pending, self._flush_wanted = self._pending, [], False
            return batch, self.closed

    def done(self, count: int) -> None:
        with self._lock:
            self._handled += count
            self._progress.notify_all()

    def wait_handled(self, timeout: float | None) -> bool:
        """Wait until everything accepted so far is handled; False if ``timeout`` ran out."""
        with self._lock:
            target = self._accepted
            self._flush_wanted = True
            self._wake.notify()
            return self._progress.wait_for(lambda: self._handled >= target, timeout)

    def close(self) -> bool:
        """Refuse new records and wake the writer for the last batch; False if already closed."""
        with self._lock:
            if self.closed:
                return False
            self.closed = True
            self._wake.notify()
            return True

    def _anything(self) -> bool:
        return bool(self._pending) or self._flush_wanted or self.closed

    def _batch_due(self) -> bool:
        return len(self._pending) >= self.batch_size or self._flush_wanted or self.closed
