"""The PostgreSQL key store's schema as ordered, numbered migrations, and the pepper check.

Used by ``pg_keys.PostgresKeyStore`` on its first connection (gateway or CLI). Same pattern as the
ledger's ``ledger/migrations.py``: ``migrate`` applies, in one transaction under an advisory lock,
every migration newer than the recorded version, so replicas starting together serialise and a
second run changes nothing; a database newer than this code is refused. The keys keep their own
version table (``api_keys_schema_version``) and lock, so they may share a database with the ledger
without either reading the other's version. Migrations are append-only: never edit a released one.

``api_keys_meta`` holds an HMAC of a fixed text under the pepper: a process holding another pepper
would fail every key, so it is refused at start-up with a message instead of answering 401s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

from hybridgate.auth.records import KeyRecord, record_from_row
from hybridgate.errors import ConfigError

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

# pg_advisory_xact_lock key: any constant the replicas agree on ("hgapikey" as hex); not the ledger's.
LOCK_KEY = 0x68676170696B6579
PEPPER_CHECK = "hybridgate api-key pepper check"

MIGRATIONS: tuple[str, ...] = (
    # 1: keys and the pepper check. Columns mirror KeyRecord plus the hash; times are Unix seconds.
    """CREATE TABLE api_keys_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE api_keys (
    key_id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    environment TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION,
    revoked_at DOUBLE PRECISION,
    budget_usd_day DOUBLE PRECISION,
    budget_usd_month DOUBLE PRECISION,
    rpm INTEGER,
    tpm INTEGER,
    routes TEXT[] NOT NULL,
    admin BOOLEAN NOT NULL,
    privacy TEXT
);
CREATE INDEX api_keys_environment ON api_keys (environment, created_at)""",
)
SCHEMA_VERSION = len(MIGRATIONS)
# A connection of its own (the CLI) or one borrowed from the gateway's pool.
Connection: TypeAlias = "asyncpg.Connection | PoolConnectionProxy[asyncpg.Record]"

FIELDS = (
    "key_id, name, environment, created_at, expires_at, revoked_at, "
    "budget_usd_day, budget_usd_month, rpm, tpm, routes, admin, privacy"
)
SELECT_ONE = f"SELECT key_hash, {FIELDS} FROM api_keys WHERE key_id = $1"
INSERT = f"INSERT INTO api_keys (key_hash, {FIELDS}) VALUES ({', '.join(f'${i}' for i in range(1, 15))}) " + (
    "ON CONFLICT (key_id) DO NOTHING"
)
PUT_PEPPER_CHECK = "INSERT INTO api_keys_meta VALUES ('pepper_check', $1) ON CONFLICT (name) DO NOTHING"
REVOKE = "UPDATE api_keys SET revoked_at = $2 WHERE key_id = $1 AND revoked_at IS NULL"


async def migrate(conn: Connection, pepper_check: str) -> int:
    """Bring the schema up to ``SCHEMA_VERSION`` and check the pepper; returns the version found."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS api_keys_schema_version "
            "(version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        found = int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM api_keys_schema_version"))
        if found > SCHEMA_VERSION:
            raise ConfigError(
                f"the key store has schema version {found} but this hybridgate knows up to "
                f"{SCHEMA_VERSION}; upgrade hybridgate or point [postgres] dsn at another database"
            )
        for version in range(found + 1, SCHEMA_VERSION + 1):
            await conn.execute(MIGRATIONS[version - 1])
            await conn.execute("INSERT INTO api_keys_schema_version (version) VALUES ($1)", version)
        await conn.execute(PUT_PEPPER_CHECK, pepper_check)
        stored = await conn.fetchval("SELECT value FROM api_keys_meta WHERE name = 'pepper_check'")
    if stored != pepper_check:
        raise ConfigError(
            "the keys in PostgreSQL were created with another pepper; give this process the same "
            "pepper variable (auth.pepper_env) as the gateways and CLI that created them"
        )
    return found


def to_row(record: KeyRecord) -> tuple[object, ...]:
    """``record`` as the values of ``FIELDS``, in order."""
    r = record
    limits = (r.budget_usd_day, r.budget_usd_month, r.rpm, r.tpm)
    times = (r.created_at, r.expires_at, r.revoked_at)
    return (r.key_id, r.name, r.environment, *times, *limits, list(r.routes), r.admin, r.privacy)


def to_record(row: Sequence[Any] | asyncpg.Record) -> KeyRecord:
    """The record of a row of ``FIELDS`` (routes as a text array)."""
    return record_from_row(tuple(row), routes=row[10])
