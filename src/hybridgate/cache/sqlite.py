"""The cache in a SQLite file: survives restarts, shared by the workers of one machine.

Calls run on the store's own two worker threads, never the event loop's default pool (which
other components share): one connection writes, another reads, so a read does not queue behind a
write waiting for a lock held by another process (WAL lets readers go on). Expired rows are
skipped on read and pruned, with the oldest rows past ``max_entries``, every ``PRUNE_EVERY``
writes.
Semantic notes are rows with a scope; ``notes_since`` reads the ones past the last rowid seen.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from hybridgate.cache.memory import SemanticNote

PRUNE_EVERY = 256
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cache_entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    value BLOB NOT NULL,
    expires REAL NOT NULL,
    scope TEXT,
    query TEXT,
    vector BLOB
);
CREATE INDEX IF NOT EXISTS cache_entries_expires ON cache_entries(expires);
"""


MAX_PARAMETERS = 500  # keys per IN (...) query; SQLite's default limit is 32,766


class SqliteStore:
    name = "sqlite"

    def __init__(self, path: str, max_entries: int) -> None:
        self._conn = _connect(path)
        self._conn.executescript(_SCHEMA)
        self._reader = _connect(path)
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cache-sqlite")
        self._max_entries = max_entries
        self._writes = 0
        self._seen = 0  # the first notes_since() indexes what earlier runs left

    async def get(self, key: str) -> bytes | None:
        return await self._run(self._get, key)

    async def put(self, key: str, value: bytes, ttl_s: float, note: SemanticNote | None) -> None:
        await self._run(self._put, key, value, ttl_s, note)

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        return await self._run(self._get_many, keys)

    async def notes_since(self) -> list[SemanticNote]:
        return await self._run(self._notes_since)

    async def put_many(self, items: list[tuple[str, bytes]], ttl_s: float) -> None:
        """Load many entries in one transaction (warming a cache, benchmarks); no notes."""
        expires = time.time() + ttl_s
        rows = [(key, value, expires) for key, value in items]
        await self._run(self._put_many, rows)

    async def aclose(self) -> None:
        self._threads.shutdown(wait=True)
        self._conn.close()
        self._reader.close()

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, call, *args)

    def _get(self, key: str) -> bytes | None:
        with self._read_lock:
            row = self._reader.execute(
                "SELECT value FROM cache_entries WHERE key = ? AND expires > ?", (key, time.time())
            ).fetchone()
        return bytes(row[0]) if row else None

    def _get_many(self, keys: list[str]) -> list[bytes | None]:
        found: dict[str, bytes] = {}
        for start in range(0, len(keys), MAX_PARAMETERS):
            part = keys[start : start + MAX_PARAMETERS]
            with self._read_lock:
                rows = self._reader.execute(
                    f"SELECT key, value FROM cache_entries WHERE key IN ({', '.join('?' * len(part))})"
                    " AND expires > ?",
                    (*part, time.time()),
                ).fetchall()
            found.update((key, bytes(value)) for key, value in rows)
        return [found.get(key) for key in keys]

    def _put(self, key: str, value: bytes, ttl_s: float, note: SemanticNote | None) -> None:
        scope, query, vector = (note.scope, note.query, note.vector) if note else (None, None, None)
        with self._lock:
            # REPLACE gives the row a new seq, so other replicas see a rewritten note again.
            self._conn.execute(
                "INSERT OR REPLACE INTO cache_entries (key, value, expires, scope, query, vector)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (key, value, time.time() + ttl_s, scope, query, vector),
            )
            self._writes += 1
            if self._writes % PRUNE_EVERY == 0:
                self._prune()

    def _put_many(self, rows: list[tuple[str, bytes, float]]) -> None:
        with self._lock:
            self._conn.execute("BEGIN")
            self._conn.executemany(
                "INSERT OR REPLACE INTO cache_entries (key, value, expires) VALUES (?, ?, ?)", rows
            )
            self._conn.execute("COMMIT")

    def _prune(self) -> None:
        self._conn.execute("DELETE FROM cache_entries WHERE expires <= ?", (time.time(),))
        self._conn.execute(
            "DELETE FROM cache_entries WHERE seq <= (SELECT seq FROM cache_entries"
            " ORDER BY seq DESC LIMIT 1 OFFSET ?)",
            (self._max_entries,),
        )

    def _notes_since(self) -> list[SemanticNote]:
        with self._read_lock:
            # Every row since the last call, noted or not, so that ``_seen`` moves past plain
            # entries too: filtering on scope in SQL would rescan them on every lookup.
            rows = self._reader.execute(
                "SELECT seq, key, scope, query, vector FROM cache_entries WHERE seq > ? ORDER BY seq",
                (self._seen,),
            ).fetchall()
            if rows:
                self._seen = rows[-1][0]
        return [
            SemanticNote(key, scope, query, bytes(vector))
            for _, key, scope, query, vector in rows
            if scope is not None
        ]


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=5.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn
