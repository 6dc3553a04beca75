"""Stored Responses API answers (``store`` / ``previous_response_id``), encrypted, in the ledger database.

Keeping a conversation is keeping prompts, so it is off unless ``[responses] store = "local"``.
Each stored answer is one row: its id, the tenant (the caller's key id) that may read it, when it
expires, and one AES-256-GCM blob holding the response object, its input items and the whole
conversation as chat messages. Stored chat completions (``store: true`` on
``/v1/chat/completions``) live in a second table, ``chat_completions``: same columns, sealing
and tenancy; the blob holds the completion, its request messages and the requested model.
The key is derived (HKDF-SHA256) from the deployment secret that
keys the ledger's prompt HMACs; the row's id and tenant are the associated data, so a blob copied
to another row or tenant does not open. ``SqliteResponseStore`` keeps them in the SQLite ledger
file; ``pg_response_store.PostgresResponseStore`` in the PostgreSQL ledger that replicas share.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hybridgate.types import Json

PURGE_EVERY_S = 600.0
_NONCE_BYTES = 12


class Sealer:
    """AES-256-GCM with a key derived from the deployment secret."""

    def __init__(self, secret: bytes) -> None:
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"hybridgate", info=b"responses-store v1"
        ).derive(secret)
        self._aead = AESGCM(key)

    def seal(self, plain: bytes, associated: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plain, associated)

    def open(self, sealed: bytes, associated: bytes) -> bytes | None:
        """The plaintext, or None when the blob was not sealed for this row with this secret."""
        try:
            return self._aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], associated)
        except (InvalidTag, ValueError):
            return None


@dataclass
class StoredResponse:
    response: Json  # the response object, as the caller got it
    input_items: list[Json]  # this request's own input items, each with an id
    messages: list[Json]  # the conversation so far as chat messages, this answer included

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {"response": self.response, "input_items": self.input_items, "messages": self.messages}
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> StoredResponse:
        value = orjson.loads(data)
        return cls(value["response"], value["input_items"], value["messages"])


def associated_data(response_id: str, tenant: str) -> bytes:
    return response_id.encode() + b"\0" + tenant.encode()


def completion_data(completion_id: str, tenant: str) -> bytes:
    """A stored chat completion's associated data: not interchangeable with a response's."""
    return b"chat.completion\0" + associated_data(completion_id, tenant)


def open_completion(sealer: Sealer, completion_id: str, tenant: str, sealed: bytes) -> Json | None:
    plain = sealer.open(sealed, completion_data(completion_id, tenant))
    if plain is None:
        return None
    value: Json = orjson.loads(plain)
    return value


class ResponseStore(Protocol):
    """Where stored answers live; every call is scoped to the caller's tenant."""

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...

    async def save(self, tenant: str, stored: StoredResponse) -> None: ...

    async def load(self, tenant: str, response_id: str) -> StoredResponse | None: ...

    async def delete(self, tenant: str, response_id: str) -> bool: ...

    async def save_completion(self, tenant: str, completion_id: str, record: Json) -> None: ...

    async def load_completion(self, tenant: str, completion_id: str) -> Json | None: ...

    async def list_completions(self, tenant: str) -> list[Json]:
        """The tenant's stored chat completions, oldest first."""
        ...

    async def update_completion(self, tenant: str, completion_id: str, record: Json) -> bool: ...

    async def delete_completion(self, tenant: str, completion_id: str) -> bool: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    blob BLOB NOT NULL
)
"""
_COMPLETIONS_SCHEMA = _SCHEMA.replace("responses", "chat_completions")


class SqliteResponseStore:
    """Stored answers in a table of the SQLite ledger file (WAL, one connection, calls in a thread)."""

    def __init__(self, path: str, sealer: Sealer, ttl_s: float) -> None:
        self._path = path
        self._sealer = sealer
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._next_purge = 0.0

    async def start(self) -> None:
        await asyncio.to_thread(self._open)

    def _open(self) -> None:
        with self._lock:
            if self._conn is None:
                conn = sqlite3.connect(self._path, check_same_thread=False, timeout=5.0)
                conn.execute("PRAGMA journal_mode=WAL")
                # no fsync per answer on the request path: WAL commits survive a crash of the
                # process, and a power loss costs at most the answers since the last checkpoint
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(_SCHEMA)
                conn.execute("CREATE INDEX IF NOT EXISTS responses_expires ON responses (expires_at)")
                conn.execute(_COMPLETIONS_SCHEMA)
                conn.execute(
                    "CREATE INDEX IF NOT EXISTS chat_completions_tenant "
                    "ON chat_completions (tenant, created_at)"
                )
                conn.commit()
                self._conn = conn

    async def aclose(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _run(self, sql: str, args: tuple[object, ...]) -> list[tuple[object, ...]]:
        with self._lock:
            if self._conn is None:
                raise RuntimeError("response store is not started")
            rows = self._conn.execute(sql, args).fetchall()
            self._conn.commit()
            return rows

    async def save(self, tenant: str, stored: StoredResponse) -> None:
        now = time.time()
        response_id = str(stored.response["id"])
        blob = self._sealer.seal(stored.to_bytes(), associated_data(response_id, tenant))
        args = (response_id, tenant, now, now + self._ttl_s, blob)
        await asyncio.to_thread(self._run, "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)", args)
        await self._purge_if_due(now)

    async def load(self, tenant: str, response_id: str) -> StoredResponse | None:
        sql = "SELECT blob FROM responses WHERE id = ? AND tenant = ? AND expires_at >= ?"
        rows = await asyncio.to_thread(self._run, sql, (response_id, tenant, time.time()))
        if not rows:
            return None
        sealed = rows[0][0]
        assert isinstance(sealed, bytes)
        plain = self._sealer.open(sealed, associated_data(response_id, tenant))
        return StoredResponse.from_bytes(plain) if plain is not None else None

    async def _purge_if_due(self, now: float) -> None:
        """Every PURGE_EVERY_S, delete the expired rows of both tables (one clock for both, so a
        busy table never keeps the other's purge from coming due)."""
        if now >= self._next_purge:
            self._next_purge = now + PURGE_EVERY_S
            for table in ("responses", "chat_completions"):
                await asyncio.to_thread(self._run, f"DELETE FROM {table} WHERE expires_at < ?", (now,))

    async def delete(self, tenant: str, response_id: str) -> bool:
        sql = "DELETE FROM responses WHERE id = ? AND tenant = ? RETURNING id"
        return bool(await asyncio.to_thread(self._run, sql, (response_id, tenant)))

    async def save_completion(self, tenant: str, completion_id: str, record: Json) -> None:
        now = time.time()
        blob = self._sealer.seal(orjson.dumps(record), completion_data(completion_id, tenant))
        args = (completion_id, tenant, now, now + self._ttl_s, blob)
        await asyncio.to_thread(self._run, "INSERT INTO chat_completions VALUES (?, ?, ?, ?, ?)", args)
        await self._purge_if_due(now)

    async def load_completion(self, tenant: str, completion_id: str) -> Json | None:
        sql = "SELECT blob FROM chat_completions WHERE id = ? AND tenant = ? AND expires_at >= ?"
        rows = await asyncio.to_thread(self._run, sql, (completion_id, tenant, time.time()))
        if not rows:
            return None
        sealed = rows[0][0]
        assert isinstance(sealed, bytes)
        return open_completion(self._sealer, completion_id, tenant, sealed)

    async def list_completions(self, tenant: str) -> list[Json]:
        sql = (
            "SELECT id, blob FROM chat_completions WHERE tenant = ? AND expires_at >= ? "
            "ORDER BY created_at, id"
        )
        rows = await asyncio.to_thread(self._run, sql, (tenant, time.time()))
        records = []
        for completion_id, sealed in rows:
            assert isinstance(sealed, bytes)
            if (record := open_completion(self._sealer, str(completion_id), tenant, sealed)) is not None:
                records.append(record)
        return records

    async def update_completion(self, tenant: str, completion_id: str, record: Json) -> bool:
        blob = self._sealer.seal(orjson.dumps(record), completion_data(completion_id, tenant))
        sql = (
            "UPDATE chat_completions SET blob = ? "
            "WHERE id = ? AND tenant = ? AND expires_at >= ? RETURNING id"
        )
        return bool(await asyncio.to_thread(self._run, sql, (blob, completion_id, tenant, time.time())))

    async def delete_completion(self, tenant: str, completion_id: str) -> bool:
        sql = "DELETE FROM chat_completions WHERE id = ? AND tenant = ? RETURNING id"
        return bool(await asyncio.to_thread(self._run, sql, (completion_id, tenant)))
