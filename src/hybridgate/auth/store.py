"""The ``KeyStore`` protocol: what the HTTP edge, the gateway and the ``keys`` CLI need of a key store.

Two implementations: ``keys.SqliteKeyStore`` (a file on one machine, the default) and
``pg_keys.PostgresKeyStore`` (one database shared by replicas on several machines), chosen by
``[auth] keys_store``. ``verify`` is async and on the request path; the admin operations
(``create``, ``list``, ``revoke``, ``get``) are sync, for the CLI, and may block.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from hybridgate.auth.records import KeyRecord


class KeyStore(Protocol):
    async def verify(self, plaintext: str, *, environment: str | None = None) -> KeyRecord:
        """The record of a valid key; AuthenticationError (401) for anything else, or
        KeyStoreUnavailableError (503) when the store cannot tell."""
        ...

    def create(
        self,
        *,
        environment: str,
        name: str,
        budget_usd_day: float | None = None,
        budget_usd_month: float | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        routes: Sequence[str] = (),
        expires_at: float | None = None,
        admin: bool = False,
        privacy: str | None = None,
    ) -> tuple[str, KeyRecord]:
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
