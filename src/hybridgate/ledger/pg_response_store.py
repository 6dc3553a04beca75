"""Stored Responses API answers in the PostgreSQL ledger database, so every replica can continue a
conversation another one started. Same rows, sealing and tenancy as ``response_store``."""

from __future__ import annotations

import time

import asyncpg
import orjson

from hybridgate.errors import StoreUnavailableError
from hybridgate.ledger.response_store import (
    PURGE_EVERY_S,
    Sealer,
    StoredResponse,
    associated_data,
    completion_data,
    open_completion,
)
from hybridgate.types import Json

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    blob BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_expires ON responses (expires_at);
CREATE TABLE IF NOT EXISTS chat_completions (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    blob BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS chat_completions_tenant ON chat_completions (tenant, created_at);
"""


class PostgresResponseStore:
    """An asyncpg pool on the serving event loop; a failing server raises ``StoreUnavailableError``."""

    def __init__(
        self,
        dsn: str,
        sealer: Sealer,
        ttl_s: float,
        *,
        password: str | None,
        timeout_s: float,
        pool_size: int,
    ) -> None:
        self._dsn = dsn
        self._sealer = sealer
        self._ttl_s = ttl_s
        self._password = password
        self._timeout_s = timeout_s
        self._size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._ready = False
        self._next_purge = 0.0

    async def start(self) -> None:
        if self._pool is None:
            # min_size 0: an unreachable server does not stop the gateway; calls fail until it is back
            self._pool = await asyncpg.create_pool(
                self._dsn, password=self._password, timeout=self._timeout_s, min_size=0, max_size=self._size
            )

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()

    async def _execute(self, sql: str, *args: object) -> list[asyncpg.Record]:
        if self._pool is None:
            raise StoreUnavailableError("response store is not started")
        try:
            async with self._pool.acquire(timeout=self._timeout_s) as conn:
                if not self._ready:
                    await conn.execute(_SCHEMA)
                    self._ready = True
                rows: list[asyncpg.Record] = await conn.fetch(sql, *args, timeout=self._timeout_s)
                return rows
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreUnavailableError(f"response store: PostgreSQL failed: {exc}") from exc

    async def save(self, tenant: str, stored: StoredResponse) -> None:
        now = time.time()
        response_id = str(stored.response["id"])
        blob = self._sealer.seal(stored.to_bytes(), associated_data(response_id, tenant))
        await self._execute(
            "INSERT INTO responses VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET "
            "tenant = $2, created_at = $3, expires_at = $4, blob = $5",
            response_id,
            tenant,
            now,
            now + self._ttl_s,
            blob,
        )
        await self._purge_if_due(now)

    async def load(self, tenant: str, response_id: str) -> StoredResponse | None:
        rows = await self._execute(
            "SELECT blob FROM responses WHERE id = $1 AND tenant = $2 AND expires_at >= $3",
            response_id,
            tenant,
            time.time(),
        )
        if not rows:
            return None
        plain = self._sealer.open(bytes(rows[0]["blob"]), associated_data(response_id, tenant))
        return StoredResponse.from_bytes(plain) if plain is not None else None

    async def _purge_if_due(self, now: float) -> None:
        """Every PURGE_EVERY_S, delete the expired rows of both tables (one clock for both)."""
        if now >= self._next_purge:
            self._next_purge = now + PURGE_EVERY_S
            for table in ("responses", "chat_completions"):
                await self._execute(f"DELETE FROM {table} WHERE expires_at < $1", now)

    async def delete(self, tenant: str, response_id: str) -> bool:
        rows = await self._execute(
            "DELETE FROM responses WHERE id = $1 AND tenant = $2 RETURNING id", response_id, tenant
        )
        return bool(rows)

    async def save_completion(self, tenant: str, completion_id: str, record: Json) -> None:
        now = time.time()
        blob = self._sealer.seal(orjson.dumps(record), completion_data(completion_id, tenant))
        await self._execute(
            "INSERT INTO chat_completions VALUES ($1, $2, $3, $4, $5)",
            completion_id,
            tenant,
            now,
            now + self._ttl_s,
            blob,
        )
        await self._purge_if_due(now)

    async def load_completion(self, tenant: str, completion_id: str) -> Json | None:
        rows = await self._execute(
            "SELECT blob FROM chat_completions WHERE id = $1 AND tenant = $2 AND expires_at >= $3",
            completion_id,
            tenant,
            time.time(),
        )
        return open_completion(self._sealer, completion_id, tenant, bytes(rows[0]["blob"])) if rows else None

    async def list_completions(self, tenant: str) -> list[Json]:
        rows = await self._execute(
            "SELECT id, blob FROM chat_completions WHERE tenant = $1 AND expires_at >= $2 "
            "ORDER BY created_at, id",
            tenant,
            time.time(),
        )
        opened = (open_completion(self._sealer, row["id"], tenant, bytes(row["blob"])) for row in rows)
        return [record for record in opened if record is not None]

    async def update_completion(self, tenant: str, completion_id: str, record: Json) -> bool:
        blob = self._sealer.seal(orjson.dumps(record), completion_data(completion_id, tenant))
        rows = await self._execute(
            "UPDATE chat_completions SET blob = $1 WHERE id = $2 AND tenant = $3 AND expires_at >= $4 "
            "RETURNING id",
            blob,
            completion_id,
            tenant,
            time.time(),
        )
        return bool(rows)

    async def delete_completion(self, tenant: str, completion_id: str) -> bool:
        rows = await self._execute(
            "DELETE FROM chat_completions WHERE id = $1 AND tenant = $2 RETURNING id", completion_id, tenant
        )
        return bool(rows)
