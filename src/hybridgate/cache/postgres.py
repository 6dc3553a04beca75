"""Cache entries in PostgreSQL: the embeddings' per-text cache shared by replicas on the ledger's
database server (``[embeddings] cache_store = "postgres"``).

One table of ``key -> value`` with an expiry; expired rows are skipped on read and deleted now
and then on write. It keeps no semantic notes, so the response cache does not use it (its
semantic index travels through SQLite or Redis). The asyncpg pool is opened on first use, on the
serving event loop, with ``min_size = 0``: an unreachable server costs the calls that need it
(misses, for the cache above), never the gateway's start.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg

from hybridgate.cache.memory import SemanticNote
from hybridgate.errors import StoreUnavailableError

PURGE_EVERY_S = 600.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS hybridgate_cache (
    key TEXT PRIMARY KEY,
    value BYTEA NOT NULL,
    expires DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS hybridgate_cache_expires ON hybridgate_cache (expires);
"""


class PostgresStore:
    name = "postgres"

    def __init__(self, dsn: str, *, password: str | None, timeout_s: float, pool_size: int) -> None:
        self._dsn = dsn
        self._password = password
        self._timeout_s = timeout_s
        self._size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        self._next_purge = 0.0

    async def get(self, key: str) -> bytes | None:
        return (await self.get_many([key]))[0]

    async def put(self, key: str, value: bytes, ttl_s: float, note: SemanticNote | None) -> None:
        await self.put_many([(key, value)], ttl_s)

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        if not keys:
            return []
        rows = await self._fetch(
            "SELECT key, value FROM hybridgate_cache WHERE key = ANY($1::text[]) AND expires > $2",
            keys,
            time.time(),
        )
        found = {row["key"]: bytes(row["value"]) for row in rows}
        return [found.get(key) for key in keys]

    async def put_many(self, items: list[tuple[str, bytes]], ttl_s: float) -> None:
        if not items:
            return
        now = time.time()
        await self._fetch(
            "INSERT INTO hybridgate_cache (key, value, expires) "
            "SELECT * FROM unnest($1::text[], $2::bytea[], $3::float8[]) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires = EXCLUDED.expires",
            [key for key, _ in items],
            [value for _, value in items],
            [now + ttl_s] * len(items),
        )
        if now >= self._next_purge:
            self._next_purge = now + PURGE_EVERY_S
            await self._fetch("DELETE FROM hybridgate_cache WHERE expires <= $1", now)

    async def notes_since(self) -> list[SemanticNote]:
        return []  # no semantic index here: see the module docstring

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()

    async def _fetch(self, sql: str, *args: object) -> list[asyncpg.Record]:
        try:
            pool = await self._open()
            async with pool.acquire(timeout=self._timeout_s) as conn:
                rows: list[asyncpg.Record] = await conn.fetch(sql, *args, timeout=self._timeout_s)
                return rows
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreUnavailableError(f"cache store postgres failed: {exc}") from exc

    async def _open(self) -> asyncpg.Pool:
        async with self._opening:
            if self._pool is None:
                pool = await asyncpg.create_pool(
                    self._dsn,
                    password=self._password,
                    timeout=self._timeout_s,
                    min_size=0,
                    max_size=self._size,
                )
                async with pool.acquire(timeout=self._timeout_s) as conn:
                    await conn.execute(_SCHEMA, timeout=self._timeout_s)
                self._pool = pool
            return self._pool
