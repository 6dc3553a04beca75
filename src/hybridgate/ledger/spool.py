"""A local append-only file that holds ledger rows while the shared store is unreachable.

Layer 5, used only by ``PostgresLedger``'s writer thread, never on the request path. Each row is
one JSON line ``{"key": ..., "record": {...}}``; a batch is written, flushed and fsynced before
``append`` returns, so a row in the spool survives SIGKILL and power loss.

``replay`` reads the file line by line and hands it to the store ``REPLAY_CHUNK`` rows at a time,
so memory stays flat whatever the spool's size. After each chunk is stored it records how far it
got in ``<path>.offset`` (written atomically), so a crash or an outage mid-replay re-sends at
most the chunk in flight, which is safe because the store ignores keys it already has. Once the
whole file is stored it is emptied, then the offset file removed; an offset beyond the end of
the file is stale (the file was emptied after it was written) and is ignored and cleared.

A line that cannot be read back (torn by a crash mid-append, or written by an incompatible
version) is moved to ``<path>.rejected`` for a person to look at and counted by the caller as a
dropped row; it is never silently deleted.

Several gateway processes on one machine (``serve --workers N``) may share one spool path:
every operation holds an exclusive ``flock`` on the file, so one process never truncates rows
another has just appended.
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
REPLAY_CHUNK = 5000


class Spool:
    """The spool file at ``path``; created on the first ``append``."""

    def __init__(self, path: str, *, chunk: int = REPLAY_CHUNK) -> None:
        self.path = path
        self.offset_path = path + ".offset"
        self.rejected_path = path + ".rejected"
        self.chunk = chunk

    def has_rows(self) -> bool:
        """Whether the file holds anything (cheap: no lock, no read)."""
        return os.path.exists(self.path) and os.path.getsize(self.path) > 0

    def count(self) -> int:
        """Rows waiting in the file, past what a replay already stored (a cut-off last line included)."""
        if not os.path.exists(self.path):
            return 0
        with self._locked("rb") as file:
            file.seek(self._offset(file))
            return sum(1 for line in file if line.strip())

    def append(self, rows: list[Keyed]) -> None:
        """Write ``rows`` durably; raises OSError if the disk refuses (the caller counts the loss)."""
        data = "".join(_encode(key, rec) for key, rec in rows).encode("utf-8")
        with self._locked("a+b") as file:
            self._offset(file)  # clears a stale offset before the file grows past it
            if file.seek(0, os.SEEK_END) > 0 and _last_byte(file) != b"\n":
                data = b"\n" + data  # a torn line from a crash stays alone on its line
            file.write(data)
            file.flush()
            os.fsync(file.fileno())

    async def replay(
        self, store: Callable[[list[Keyed]], Awaitable[None]], reject: Callable[[int], None] | None = None
    ) -> tuple[int, int]:
        """Pass every spooled row to ``store``, a chunk at a time, then empty the file:
        (rows replayed, lines rejected). ``reject(n)`` is told of unreadable lines as they are
        moved to ``rejected_path``.

        If ``store`` raises, the rows not yet stored stay in the file and the exception propagates.
        """
        if not self.has_rows():
            return 0, 0
        replayed = rejected = 0
        with self._locked("r+b") as file:
            file.seek(self._offset(file))
            while True:
                rows, bad = _read_chunk(file, self.chunk)
                if not rows and not bad:
                    break
                if rows:
                    await store(rows)
                self._reject(bad, reject)
                self._save_offset(file.tell())
                replayed, rejected = replayed + len(rows), rejected + len(bad)
            file.truncate(0)
            file.flush()
            os.fsync(file.fileno())
            self._save_offset(0)
        return replayed, rejected

    def _offset(self, file: IO[bytes]) -> int:
        """Where the replay stopped last time; 0 (and the offset file cleared) when stale."""
        try:
            with open(self.offset_path, "rb") as saved:
                offset = int(saved.read() or b"0")
        except (OSError, ValueError):
            return 0
        if offset > os.fstat(file.fileno()).st_size:
            self._save_offset(0)
            return 0
        return offset

    def _save_offset(self, offset: int) -> None:
        if offset == 0:
            if os.path.exists(self.offset_path):
                os.unlink(self.offset_path)
            return
        tmp = self.offset_path + ".tmp"
        with open(tmp, "wb") as file:
            file.write(str(offset).encode())
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, self.offset_path)

    def _reject(self, lines: list[bytes], reject: Callable[[int], None] | None) -> None:
        if not lines:
            return
        logger.error("ledger spool: %d unreadable lines moved to %s", len(lines), self.rejected_path)
        if reject is not None:
            reject(len(lines))
        try:
            with open(self.rejected_path, "ab") as file:
                file.write(b"".join(line if line.endswith(b"\n") else line + b"\n" for line in lines))
                file.flush()
                os.fsync(file.fileno())
        except OSError:
            logger.exception("ledger spool: could not write %s; the lines are lost", self.rejected_path)

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


def _read_chunk(file: IO[bytes], size: int) -> tuple[list[Keyed], list[bytes]]:
    """Up to ``size`` rows from the file's position, and the unreadable lines met on the way."""
    rows: list[Keyed] = []
    bad: list[bytes] = []
    while len(rows) < size:
        line = file.readline()
        if not line:
            break
        if not line.strip():
            continue
        try:
            item = json.loads(line.decode("utf-8"))
            rows.append((str(item["key"]), LedgerRecord(**item["record"])))
        except (ValueError, KeyError, TypeError):
            # A line torn by a crash mid-write, or written by an incompatible version.
            bad.append(line)
    return rows, bad
