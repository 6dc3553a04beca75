"""The seam between the pipeline and wherever ledger rows are kept: the ``Ledger`` protocol.

Layer 5 of the flow. ``SqliteLedger`` (``store.py``, one machine) and ``PostgresLedger``
(``postgres.py``, shared by replicas) implement it; the gateway builds one from
``[ledger] store`` and passes it in. Nothing above this module names an implementation.
"""

from __future__ import annotations

from typing import Any, Protocol

from hybridgate.ledger.records import LedgerRecord


class Ledger(Protocol):
    """Records written off the hot path in batches, and rollups read back."""

    @property
    def dropped(self) -> int:
        """Records lost for good (queue full, ledger closed, a row the store rejects)."""
        ...

    @property
    def queue_depth(self) -> int:
        """Records accepted but not yet handed to the store."""
        ...

    def start(self) -> None:
        """Prepare the store and start the writer; raises if the configuration cannot work."""

    def record(self, rec: LedgerRecord) -> None:
        """Queue one record. Never blocks and never raises: it is on the request path."""

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything recorded so far is durable; False if ``timeout`` ran out."""
        ...

    def close(self) -> None:
        """Write everything queued, then stop the writer."""

    async def aclose(self) -> None:
        """``close()`` from async code, off the event loop's thread."""

    def degraded_reason(self) -> str | None:
        """Why records are not reaching the store right now, or None when all is well."""
        ...

    def usage(self, by: str, days: float | None = None) -> list[dict[str, Any]]:
        """Totals per ``by`` group over the last ``days`` (None: all time)."""
        ...

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest ``limit`` rows, newest first."""
        ...
