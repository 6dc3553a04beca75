"""The ``KeyStore`` protocol: what the HTTP edge, the gateway and the ``keys`` CLI need of a key store.

Two implementations: ``keys.SqliteKeyStore`` (a file on one machine, the default) and
``pg_keys.PostgresKeyStore`` (one database shared by replicas on several machines), chosen by
``[auth] keys_store``. ``verify`` is async and on the request path; the admin operations
(``create``, ``list``, ``revoke``, ``get``) are sync, for the CLI, and may block.
"""

from __future__ import annotations

import hashlib
import hmac
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, Unpack

from hybridgate.auth.records import KeyRecord, KeySpec, check_usable, draft_key, parse_key
from hybridgate.errors import AuthenticationError, ConfigError

INVALID = "invalid API key; check the key you send, or create one with `hybridgate keys create`"
_DUMMY_HASH = "0" * 64


class KeyStore(Protocol):
    async def verify(self, plaintext: str, *, environment: str | None = None) -> KeyRecord:
        """The record of a valid key; AuthenticationError (401) for anything else, or
        KeyStoreUnavailableError (503) when the store cannot tell."""
        ...

    def create(self, **spec: Unpack[KeySpec]) -> tuple[str, KeyRecord]:
        """A new key (its plaintext, returned once and stored nowhere) and its record."""
        ...

    def revoke(self, key_id: str) -> KeyRecord | None: ...

    def get(self, key_id: str) -> KeyRecord | None: ...

    def list(self, environment: str | None = None) -> list[KeyRecord]: ...

    async def start(self) -> None:
        """Open connections, on the server's event loop; called once by ``Gateway.start``."""
        ...

    async def aclose(self) -> None: ...

    def degraded_reason(self) -> str | None:
        """Why the store is failing right now (for /healthz), or None."""
        ...

    async def not_ready(self) -> str | None:
        """Why this replica cannot verify keys yet (for /readyz), or None."""
        ...


@dataclass(frozen=True, slots=True)
class StoredKey:
    key_hash: str
    record: KeyRecord


class HashedKeys(ABC):
    """What both stores share: keys kept as HMACs under a pepper, checked in constant time, and
    drawn anew on an id collision. A store adds where the rows live (``_lookup``, ``_insert``)."""

    _clock: Callable[[], float]
    _pepper: bytes

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the keys live, for messages."""

    @abstractmethod
    def _insert(self, record: KeyRecord, key_hash: str) -> bool:
        """Store a new key; False if its id is taken."""

    @abstractmethod
    async def _lookup(self, key_id: str) -> StoredKey | None:
        """The stored key with this id, or None."""

    async def verify(self, plaintext: str, *, environment: str | None = None) -> KeyRecord:
        """The record of a valid key; AuthenticationError (401) for anything else. With
        ``environment``, a key created for another environment is refused too."""
        parts = parse_key(plaintext)
        digest = self._digest(plaintext)
        stored = await self._lookup(parts.key_id)
        # Compare even for an unknown id: the work done must not depend on what is stored.
        matched = hmac.compare_digest(digest, stored.key_hash if stored else _DUMMY_HASH)
        if stored is None or not matched:
            raise AuthenticationError(INVALID)
        return check_usable(stored.record, environment, self._clock())

    def _digest(self, plaintext: str) -> str:
        return hmac.new(self._pepper, plaintext.encode(), hashlib.sha256).hexdigest()

    def create(self, **spec: Unpack[KeySpec]) -> tuple[str, KeyRecord]:
        """A new key and its record. The plaintext is returned here once and stored nowhere."""
        now = self._clock()
        for _ in range(3):  # a key-id collision (1 in 62**8) just draws again
            plaintext, record = draft_key(now, **spec)
            if self._insert(record, self._digest(plaintext)):
                return plaintext, record
        raise ConfigError(f"could not draw an unused key id in {self.location}")
