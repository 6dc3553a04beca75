"""The read half of the PostgreSQL ledger: short-lived connections running ``pg_rollups``' SELECTs.

Layer 5, the ``Ledger`` read methods for ``PostgresLedger`` (which inherits them), used by
``hybridgate usage``, ``tco``/``decide``, ``replay --from-ledger``, budget seeding and the
dashboard. Each call opens one connection, runs its queries (several on that one connection where
a method needs them) and closes it; the writer's connection is never borrowed. A database no
gateway has migrated yet reads as an empty ledger; an unreachable server raises ConnectionError.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg

from hybridgate.ledger import pg_rollups as pg
from hybridgate.ledger.base import Traffic
from hybridgate.ledger.rollups import check_group, no_decisions
from hybridgate.stores.postgres import is_outage, run_in_thread

T = TypeVar("T")


class PostgresReader:
    """Reads the ledger in the database at ``dsn``; every method is one short connection."""

    def __init__(self, dsn: str, *, where: str, password: str | None, timeout_s: float) -> None:
        self.dsn = dsn
        self.where = where  # host:port/database, for messages; never the password
        self._password = password
        self.timeout_s = timeout_s

    def usage(
        self,
        by: str,
        days: float | None = None,
        traffic: str | None = "live",
        *,
        feature: str | None = None,
        route: str | None = None,
    ) -> list[dict[str, Any]]:
        """Totals per ``by`` group (see ``USAGE_GROUPS``) over the last ``days``; None is all time.
        ``traffic`` is the class counted (None: every class)."""
        check_group(by)
        since = 0.0 if days is None else time.time() - days * 86400
        return self._read(
            lambda conn: pg.pg_rollup(conn, by, since, traffic, feature=feature, route=route), []
        )

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest ``limit`` rows, newest first, with list columns decoded."""
        return self._read(lambda conn: pg.pg_recent(conn, limit), [])

    def daily_series(
        self,
        by: str,
        since: float,
        traffic: str | None = "live",
        *,
        feature: str | None = None,
        route: str | None = None,
    ) -> list[dict[str, Any]]:
        check_group(by)
        return self._read(
            lambda conn: pg.pg_daily_series(conn, by, since, traffic, feature=feature, route=route), []
        )

    def decisions(
        self,
        since: float,
        traffic: str | None = "live",
        *,
        feature: str | None = None,
        route: str | None = None,
    ) -> dict[str, Any]:
        return self._read(
            lambda conn: pg.pg_decisions(conn, since, traffic, feature=feature, route=route), no_decisions()
        )

    def traffic(self, since: float, traffic: str | None = "live") -> Traffic:
        async def read(conn: asyncpg.Connection) -> Traffic:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                totals = await pg.pg_backend_totals(conn, since, traffic)
                return totals, await pg.pg_hourly_tokens(conn, since, traffic)

        empty: Traffic = ([], {})
        return self._read(read, empty)

    def request_log(
        self,
        since: float,
        limit: int,
        traffic: str | None = "live",
        *,
        feature: str | None = None,
        route: str | None = None,
    ) -> list[dict[str, Any]]:
        return self._read(
            lambda conn: pg.pg_request_log(conn, since, limit, traffic, feature=feature, route=route), []
        )

    def reported_models(self, since: float) -> list[dict[str, Any]]:
        return self._read(lambda conn: pg.pg_reported_models(conn, since), [])

    def logged_prompts(self, limit: int, skip_features: Sequence[str] = ()) -> list[dict[str, Any]]:
        return self._read(lambda conn: pg.pg_logged_prompts(conn, limit, skip_features), [])

    def _read(self, query: Callable[[asyncpg.Connection], Awaitable[T]], empty: T) -> T:
        """Run ``query`` on a short-lived connection, in a thread of its own so it works from sync
        and async callers alike; ``empty`` while no gateway has created the table yet. An
        unreachable server raises ConnectionError (an OSError)."""

        async def run() -> T:
            conn = await asyncpg.connect(self.dsn, password=self._password, timeout=self.timeout_s)
            try:
                return await query(conn)
            except asyncpg.UndefinedTableError:
                return empty
            finally:
                await conn.close(timeout=self.timeout_s)

        try:
            return run_in_thread(run(), "hybridgate-ledger-read")
        except Exception as exc:
            if is_outage(exc):
                raise ConnectionError(f"ledger: cannot read PostgreSQL at {self.where}: {exc}") from exc
            raise
