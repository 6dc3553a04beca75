"""A local append-only file that holds ledger rows while the shared store is unreachable.

Layer 5, used only by ``PostgresLedger``'s writer thread, never on the request path. Each row is
one JSON line ``{"key": ..., "record": {...}}``; a batch is written, flushed and fsynced before
``append`` returns, so a row in the spool survives SIGKILL and power loss. ``replay`` hands every
row to a callback and empties the file only if the callback returned: a failure half-way leaves
the file as it was, which is safe because the store ignores keys it already has.

Several gateway processes on one machine (``serve --workers N``) may share one spool path:
every operation holds an exclusive ``flock`` on the file, so one process never truncates rows
another has just appended. A line cut short by a crash mid-append is skipped (and counted).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import IO

from hybridgate.ledger.records import LedgerRecord

logger = logging.getLogger(__name__)

Keyed = tuple[str, LedgerRecord]


class Spool:
    """The spool file at ``path``; created on the first ``append``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def has_rows(self) -> bool:
        """Whether the file holds anything (cheap: no lock, no read)."""
        return os.path.exists(self.path) and os.path.getsize(self.path) > 0

    def count(self) -> int:
        """Rows waiting in the file (a cut-off last line included)."""
        if not os.path.exists(self.path):
            return 0
        with self._locked("rb") as file:
            return sum(1 for line in file if line.strip())

    def append(self, rows: list[Keyed]) -> None:
        """Write ``rows`` durably; raises OSError if the disk refuses (the caller counts the loss)."""
        data = "".join(_encode(key, rec) for key, rec in rows).encode("utf-8")
        with self._locked("a+b") as file:
            if file.seek(0, os.SEEK_END) > 0 and _last_byte(file) != b"\n":
                data = b"\n" + data  # a torn line from a crash stays alone on its line
            file.write(data)
            file.flush()
            os.fsync(file.fileno())

    async def replay(self, store: Callable[[list[Keyed]], Awaitable[None]]) -> tuple[int, int]:
        """Pass every spooled row to ``store``, then empty the file: (rows replayed, lines skipped).

        If ``store`` raises, the file is left untouched and the exception propagates.
        """
        if not self.has_rows():
            return 0, 0
        with self._locked("r+b") as file:
            rows, skipped = _decode(file.read().decode("utf-8", errors="replace"))
            if rows:
                await store(rows)
            file.truncate(0)
            file.flush()
            os.fsync(file.fileno())
        return len(rows), skipped

    @contextmanager
    def _locked(self, mode: str) -> Iterator[IO[bytes]]:
        with open(self.path, mode) as file:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX)
            try:
                yield file
            finally:
                fcntl.flock(file.fileno(), fcntl.LOCK_UN)


def _last_byte(file: IO[bytes]) -> bytes:
    file.seek(-1, os.SEEK_END)
    return file.read(1)


def _encode(key: str, rec: LedgerRecord) -> str:
    return json.dumps({"key": key, "record": dataclasses.asdict(rec)}, separators=(",", ":")) + "\n"


def _decode(text: str) -> tuple[list[Keyed], int]:
    rows: list[Keyed] = []
    skipped = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            rows.append((str(item["key"]), LedgerRecord(**item["record"])))
        except (ValueError, KeyError, TypeError):
            # A line torn by a crash mid-write, or written by an incompatible version.
            logger.error("ledger spool: skipping an unreadable line: %.200s", line)
            skipped += 1
    return rows, skipped
