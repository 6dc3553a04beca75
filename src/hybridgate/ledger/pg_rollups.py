"""Usage rollups and recent rows from the PostgreSQL ledger, in the same shapes as ``rollups``.

Read side of layer 5, used by ``PostgresLedger.usage``/``recent`` (so by ``hybridgate usage`` and
budget seeding). SELECTs only, on a connection it is given. PostgreSQL computes the percentiles
itself: ``percentile_cont`` interpolates between ranks exactly like ``rollups.percentile``.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from hybridgate.ledger.records import row_to_dict
from hybridgate.ledger.rollups import check_group

# The SQLite expressions of ``rollups.USAGE_GROUPS``, in PostgreSQL.
PG_GROUPS: dict[str, str] = {
    "feature": "feature",
    "cohort": "cohort",
    "route": "route",
    "model": "model",
    "backend": "backend",
    "environment": "environment",
    "api_key": "api_key_id",
    "day": "to_char(to_timestamp(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
}


async def pg_rollup(conn: asyncpg.Connection, by: str, since: float) -> list[dict[str, Any]]:
    """One dict per group since ``since``: by day in date order, else costliest first."""
    check_group(by)
    records = await conn.fetch(
        f"""SELECT {PG_GROUPS[by]} AS k, COUNT(*) AS requests, SUM((status >= 400)::int) AS errors,
            SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens,
            SUM(cost_usd) AS cost_usd, AVG(ttft_ms) AS ttft_mean_ms,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50,
            percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95
        FROM requests WHERE ts >= $1 GROUP BY k""",
        since,
    )
    rows = [_row(by, record) for record in records]
    if by == "day":
        return sorted(rows, key=lambda r: str(r[by]))
    return sorted(rows, key=lambda r: (-r["cost_usd"], -r["requests"], str(r[by])))


def _row(by: str, record: asyncpg.Record) -> dict[str, Any]:
    return {
        by: record["k"],
        "requests": int(record["requests"]),
        "errors": int(record["errors"] or 0),
        "prompt_tokens": int(record["prompt_tokens"] or 0),
        "completion_tokens": int(record["completion_tokens"] or 0),
        "cost_usd": float(record["cost_usd"] or 0.0),
        "latency_p50_ms": _float(record["p50"]),
        "latency_p95_ms": _float(record["p95"]),
        "ttft_mean_ms": _float(record["ttft_mean_ms"]),
    }


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


async def pg_recent(conn: asyncpg.Connection, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` rows, newest first, without the store's own ``row_key``."""
    records = await conn.fetch("SELECT * FROM requests ORDER BY ts DESC, id DESC LIMIT $1", limit)
    return [row_to_dict({k: v for k, v in record.items() if k != "row_key"}) for record in records]
