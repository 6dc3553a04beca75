"""The seam between the pipeline and wherever ledger rows are kept: the ``Ledger`` protocol.

Layer 5 of the flow. ``SqliteLedger`` (``store.py``, one machine) and ``PostgresLedger``
(``postgres.py``, shared by replicas) implement it; the gateway builds one from
``[ledger] store`` and passes it in, and the offline readers (``hybridgate usage``/``tco``/
``decide``/``replay``, the dashboard) read through the same object, so they work on either store.
Nothing above this module names an implementation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from hybridgate.ledger.records import LedgerRecord
from hybridgate.ledger.rollups import ANY_ROW, RowFilter

# Per-backend totals and tokens per hour since the epoch: ``Ledger.traffic``, what
# ``tco.measure.summarise`` reads.
Traffic = tuple[list[dict[str, Any]], dict[int, int]]


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

    def usage(
        self,
        by: str,
        days: float | None = None,
        traffic: str | None = "live",
        where: RowFilter = ANY_ROW,
    ) -> list[dict[str, Any]]:
        """Totals per ``by`` group over the last ``days`` (None: all time), of one traffic class
        (``records.TRAFFIC_CLASSES``; None: every class) and the rows ``where`` matches (feature,
        cohort, route, environment, key id: the dashboard's filters)."""
        ...

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest ``limit`` rows, newest first."""
        ...

    # The offline readers' views (dashboard, tco, decide, replay). ``since`` is epoch seconds.
    # No rows (or no table yet) reads as empty; an unreachable store raises ConnectionError.

    def daily_series(
        self,
        by: str,
        since: float,
        traffic: str | None = "live",
        where: RowFilter = ANY_ROW,
    ) -> list[dict[str, Any]]:
        """Requests, tokens and cost per UTC day and ``by`` group, by day then group (None first)."""
        ...

    def decisions(
        self,
        since: float,
        traffic: str | None = "live",
        where: RowFilter = ANY_ROW,
    ) -> dict[str, Any]:
        """Requests per router rule, escalations, check failures, cache lookups and hits, and
        ``latency`` p50/p95/p99 in ms (``rollups.no_decisions()`` is the empty shape)."""
        ...

    def traffic(self, since: float, traffic: str | None = "live") -> Traffic:
        """Per-backend totals (tokens, spend, busy seconds, first/last ts), and tokens per hour
        since the epoch: what ``tco.measure.summarise`` needs."""
        ...

    def request_log(
        self,
        since: float,
        limit: int,
        traffic: str | None = "live",
        where: RowFilter = ANY_ROW,
    ) -> list[dict[str, Any]]:
        """The newest ``limit`` rows since ``since`` matching the filters, metadata only
        (``rollups.LOG_COLUMNS``: never the prompt), newest first."""
        ...

    def reported_models(self, since: float) -> list[dict[str, Any]]:
        """Per (backend, requested model), each model the upstream reported, with first/last ts
        and request count: what ``drift.model_changes`` reads."""
        ...

    def logged_prompts(self, limit: int, skip_features: Sequence[str] = ()) -> list[dict[str, Any]]:
        """The newest ``limit`` successful rows with ``prompt_text``, none of ``skip_features``:
        ``request_id``, ``prompt_text``, ``cost_usd``, ``latency_ms``, newest first."""
        ...
