"""Virtual API keys in SQLite (one machine), stored as HMAC-SHA256(pepper, key) and verified in constant time.

Sits at the HTTP edge: ``api/`` calls ``KeyStore.verify`` once per request, before the pipeline;
the ``hybridgate keys`` CLI (and admin endpoints) call ``create``, ``list`` and ``revoke``. It
must never store, log or return a plaintext key after ``create`` hands it out, and imports only
``hybridgate.config/errors`` and its own package.

Lookup is by the key id (the first 8 random characters, stored in clear), then one
``hmac.compare_digest`` of the full hash; an unknown id still costs one compare against a dummy
hash, so the answer's timing says nothing about the secret part. Verified rows are cached in
memory for ``cache_ttl_s`` (5 s): the hot path does not touch SQLite, and a revocation made by
another process (the CLI) takes effect within that TTL; one made through this store is
immediate. Expiry is checked on every request against the clock, cached or not. The cache is
``key_cache.KeyCache``, as for PostgreSQL: a bounded LRU of known keys and a small, short-lived
one of unknown ids, so made-up keys never push a real key out.
``pg_keys.PostgresKeyStore`` is the same store in PostgreSQL, for replicas on several machines;
both satisfy the ``store.KeyStore`` protocol that callers depend on.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager, suppress
from pathlib import Path
from typing import Any

from hybridgate.auth.key_cache import KeyCache
from hybridgate.auth.records import KeyRecord, record_from_row
from hybridgate.auth.store import HashedKeys, StoredKey
from hybridgate.errors import ConfigError

SCHEMA_VERSION = 1
CACHE_TTL_S = 5.0
_PEPPER_CHECK = "hybridgate api-key pepper check"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    environment TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL,
    revoked_at REAL,
    budget_usd_day REAL,
    budget_usd_month REAL,
    rpm INTEGER,
    tpm INTEGER,
    routes TEXT NOT NULL,
    admin INTEGER NOT NULL,
    privacy TEXT
);
"""
_FIELDS = (
    "key_id, name, environment, created_at, expires_at, revoked_at, "
    "budget_usd_day, budget_usd_month, rpm, tpm, routes, admin, privacy"
)


def pepper_file(keys_path: str | Path) -> Path:
    """Where the pepper lives when no environment variable holds it: beside the keys database."""
    return Path(keys_path).with_suffix(".pepper")


class SqliteKeyStore(HashedKeys):
    """Hashed virtual keys in the SQLite file at ``path``; ``pepper`` keys the HMAC."""

    def __init__(
        self,
        path: str | Path,
        pepper: bytes,
        *,
        clock: Callable[[], float] = time.time,
        cache_ttl_s: float = CACHE_TTL_S,
    ) -> None:
        if not pepper:
            raise ConfigError("the API-key pepper is empty; set it or remove the variable to use a file")
        self._path = str(path)
        self._pepper = pepper
        self._clock = clock
        # A local file has no outage to ride out: nothing is served stale.
        self._cache = KeyCache(ttl_s=cache_ttl_s, stale_ttl_s=cache_ttl_s)
        _create_private(Path(self._path))
        with self._connect() as conn:
            _ensure_schema(conn, self._path, self._digest(_PEPPER_CHECK))

    async def start(self) -> None:
        """Nothing to open: the file was prepared by the constructor."""

    async def aclose(self) -> None:
        """Nothing to close: every operation opens and closes its own connection."""

    def degraded_reason(self) -> str | None:
        return None  # a local file: when it fails, requests fail loudly instead

    async def not_ready(self) -> str | None:
        return None  # a local file, opened at start

    @property
    def location(self) -> str:
        return self._path

    def revoke(self, key_id: str) -> KeyRecord | None:
        """Revoke a key at once for this store (other processes: within the cache TTL).

        Returns the key's record, or None if no key has that id. Revoking twice keeps the first time.
        """
        with self._connect() as conn, conn:
            conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                (self._clock(), key_id),
            )
        self._cache.drop(key_id)
        return self.get(key_id)

    def get(self, key_id: str) -> KeyRecord | None:
        stored = self._fetch(key_id)
        return stored.record if stored else None

    def list(self, environment: str | None = None) -> list[KeyRecord]:
        """Every key's record (never a key or hash), oldest first; optionally of one environment."""
        where, args = ("WHERE environment = ?", (environment,)) if environment else ("", ())
        with self._connect() as conn:
            rows = conn.execute(f"SELECT {_FIELDS} FROM api_keys {where} ORDER BY created_at", args)
            return [_record(row) for row in rows]

    async def _lookup(self, key_id: str) -> StoredKey | None:
        now = self._clock()
        hit = self._cache.fresh(key_id, now)
        if hit is not None:
            return hit.stored
        # SQLite may wait on a writer's lock; keep that off the event loop.
        stored = await asyncio.to_thread(self._fetch, key_id)
        self._cache.put(key_id, stored, now)
        return stored

    def _fetch(self, key_id: str) -> StoredKey | None:
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT key_hash, {_FIELDS} FROM api_keys WHERE key_id = ?", (key_id,)
            ).fetchone()
        return StoredKey(row[0], _record(row[1:])) if row else None

    def _insert(self, record: KeyRecord, key_hash: str) -> bool:
        values = (record.key_id, key_hash, *_row(record)[1:])
        try:
            with self._connect() as conn, conn:
                conn.execute(f"INSERT INTO api_keys VALUES ({', '.join('?' * len(values))})", values)
        except sqlite3.IntegrityError:
            return False
        return True

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self._path, timeout=5.0)) as conn:
            yield conn


def _create_private(path: Path) -> None:
    """Create the database file readable by its owner only, if it does not exist yet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _ensure_schema(conn: sqlite3.Connection, path: str, pepper_check: str) -> None:
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(_SCHEMA)
    with conn:
        conn.execute("INSERT OR IGNORE INTO api_keys_meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        conn.execute("INSERT OR IGNORE INTO api_keys_meta VALUES ('pepper_check', ?)", (pepper_check,))
    meta = dict(conn.execute("SELECT name, value FROM api_keys_meta").fetchall())
    if int(meta["schema_version"]) > SCHEMA_VERSION:
        raise ConfigError(
            f"keys database {path} has schema version {meta['schema_version']} but this hybridgate "
            f"knows up to {SCHEMA_VERSION}; upgrade hybridgate or point auth.keys_path at another file"
        )
    # A different pepper would make every stored key fail; say so instead of answering 401s.
    if meta["pepper_check"] != pepper_check:
        raise ConfigError(
            f"the keys in {path} were created with another pepper; give this process the same "
            "pepper variable (auth.pepper_env) or pepper file as the one that created them"
        )


def _row(record: KeyRecord) -> tuple[object, ...]:
    r = record
    limits = (r.budget_usd_day, r.budget_usd_month, r.rpm, r.tpm)
    times = (r.created_at, r.expires_at, r.revoked_at)
    return (
        r.key_id,
        r.name,
        r.environment,
        *times,
        *limits,
        json.dumps(list(r.routes)),
        int(r.admin),
        r.privacy,
    )


def _record(row: Sequence[Any]) -> KeyRecord:
    return record_from_row(row, routes=json.loads(row[10]))  # routes as JSON text
