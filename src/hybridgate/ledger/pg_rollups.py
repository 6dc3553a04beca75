"""Usage rollups and recent rows from the PostgreSQL ledger, in the same shapes as ``rollups``.

Read side of layer 5: the PostgreSQL half of the ``Ledger`` read methods (``postgres.PostgresLedger`` connects
and calls these), so of ``hybridgate usage``, budget seeding, ``tco``/``decide``, ``replay
--from-ledger`` and the dashboard. SELECTs only, on a connection it is given; every query
filters or orders on ``ts`` (indexed, see ``migrations.py``). PostgreSQL computes percentiles
itself: ``percentile_cont`` interpolates between ranks exactly like ``rollups.percentile``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from hybridgate.ledger.records import row_to_dict
from hybridgate.ledger.rollups import (
    ANY_ROW,
    FILTER_COLUMNS,
    LIVE,
    LOG_COLUMNS,
    PERCENTILE_KEYS,
    PROMPT_KEYS,
    REPORTED_KEYS,
    RowFilter,
    check_group,
    decision_dict,
)

# ``rollups.TRAFFIC_SQL`` with the class as the second parameter; None means every class.
_TRAFFIC = "($2::text IS NULL OR traffic = $2::text)"
# ``rollups.FILTER_SQL``: the traffic class as $2, then the RowFilter's columns as $3 onwards.
_FILTER = " AND ".join(
    [
        _TRAFFIC,
        *(f"(${i}::text IS NULL OR {col} = ${i}::text)" for i, col in enumerate(FILTER_COLUMNS.values(), 3)),
    ]
)
_LIMIT = f"${3 + len(FILTER_COLUMNS)}"  # the request log's limit, after the filter's parameters

# The SQLite expressions of ``rollups.USAGE_GROUPS``, in PostgreSQL.
PG_GROUPS: dict[str, str] = {
    "feature": "feature",
    "cohort": "cohort",
    "route": "route",
    "model": "model",
    "backend": "backend",
    "environment": "environment",
    "api_key": "api_key_id",
    "api": "api",
    "traffic": "traffic",
    "day": "to_char(to_timestamp(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
}


async def pg_rollup(
    conn: asyncpg.Connection,
    by: str,
    since: float,
    traffic: str | None = LIVE,
    where: RowFilter = ANY_ROW,
) -> list[dict[str, Any]]:
    """One dict per group since ``since``: by day in date order, else costliest first."""
    check_group(by)
    records = await conn.fetch(
        f"""SELECT {PG_GROUPS[by]} AS k, COUNT(*) AS requests, SUM((status >= 400)::int) AS errors,
            SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens,
            SUM(cost_usd) AS cost_usd, AVG(ttft_ms) AS ttft_mean_ms,
            SUM(texts) AS texts, SUM(cached_texts) AS cached_texts,
            SUM(saved_usd) AS saved_usd, SUM(escalations) AS escalations,
            SUM(wasted_tokens) AS wasted_tokens,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50,
            percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95
        FROM requests WHERE ts >= $1 AND {_FILTER} GROUP BY k""",
        since,
        traffic,
        *where.values(),
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
        "texts": int(record["texts"] or 0),
        "cached_texts": int(record["cached_texts"] or 0),
        "saved_usd": float(record["saved_usd"] or 0.0),
        "escalations": int(record["escalations"] or 0),
        "wasted_tokens": int(record["wasted_tokens"] or 0),
    }


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


async def pg_recent(conn: asyncpg.Connection, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` rows, newest first, without the store's own ``row_key``."""
    records = await conn.fetch("SELECT * FROM requests ORDER BY ts DESC, id DESC LIMIT $1", limit)
    return [row_to_dict({k: v for k, v in record.items() if k != "row_key"}) for record in records]


# -- the offline readers' views (tco, decide, replay, the dashboard): rollups.py's, in PostgreSQL --


async def pg_daily_series(
    conn: asyncpg.Connection,
    by: str,
    since: float,
    traffic: str | None = LIVE,
    where: RowFilter = ANY_ROW,
) -> list[dict[str, Any]]:
    """Requests, tokens and cost per UTC day and ``by`` group, ordered as SQLite orders them."""
    check_group(by)
    records = await conn.fetch(
        f"""SELECT {PG_GROUPS["day"]} AS day, {PG_GROUPS[by]} AS k, COUNT(*) AS n,
            SUM(prompt_tokens) AS p, SUM(completion_tokens) AS c, SUM(cost_usd) AS cost
        FROM requests WHERE ts >= $1 AND {_FILTER} GROUP BY day, k""",
        since,
        traffic,
        *where.values(),
    )
    rows = [
        {
            "day": r["day"],
            by: r["k"],
            "requests": int(r["n"]),
            "prompt_tokens": int(r["p"] or 0),
            "completion_tokens": int(r["c"] or 0),
            "cost_usd": float(r["cost"] or 0.0),
        }
        for r in records
    ]
    # In Python, not ORDER BY: SQLite sorts NULL first and by code point, whatever the collation.
    return sorted(rows, key=lambda r: (r["day"], r[by] is not None, r[by] or ""))


async def pg_backend_totals(
    conn: asyncpg.Connection, since: float, traffic: str | None = LIVE
) -> list[dict[str, Any]]:
    """Per backend: token mix, spend, and wall time serving successful requests (``rollups``')."""
    records = await conn.fetch(
        f"""SELECT backend, COUNT(*) AS n, SUM(prompt_tokens) AS p, SUM(completion_tokens) AS c,
            SUM(cost_usd) AS cost,
            SUM(CASE WHEN status < 400 THEN prompt_tokens + completion_tokens ELSE 0 END) AS served,
            SUM(CASE WHEN status < 400 THEN latency_ms ELSE 0 END) / 1000.0 AS busy,
            MIN(ts) AS first_ts, MAX(ts) AS last_ts
        FROM requests WHERE ts >= $1 AND backend IS NOT NULL AND api <> 'embeddings' AND {_TRAFFIC}
        GROUP BY backend""",
        since,
        traffic,
    )
    rows = [
        {
            "backend": r["backend"],
            "requests": int(r["n"]),
            "prompt_tokens": int(r["p"] or 0),
            "completion_tokens": int(r["c"] or 0),
            "cost_usd": float(r["cost"] or 0.0),
            "served_tokens": int(r["served"] or 0),
            "busy_s": float(r["busy"] or 0.0),
            "first_ts": float(r["first_ts"]),
            "last_ts": float(r["last_ts"]),
        }
        for r in records
    ]
    return sorted(rows, key=lambda r: str(r["backend"]))


async def pg_hourly_tokens(
    conn: asyncpg.Connection, since: float, traffic: str | None = LIVE
) -> dict[int, int]:
    """Tokens per hour since the epoch; ``floor``, as SQLite's CAST truncates (PostgreSQL's rounds)."""
    records = await conn.fetch(
        f"""SELECT floor(ts / 3600)::bigint AS h, SUM(prompt_tokens + completion_tokens) AS t
        FROM requests WHERE ts >= $1 AND api <> 'embeddings' AND {_TRAFFIC} GROUP BY h""",
        since,
        traffic,
    )
    return {int(r["h"]): int(r["t"] or 0) for r in records}


async def pg_decisions(
    conn: asyncpg.Connection,
    since: float,
    traffic: str | None = LIVE,
    where: RowFilter = ANY_ROW,
) -> dict[str, Any]:
    """``rollups.decision_counts`` plus request latency p50/p95/p99, in one snapshot."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        by_rule = await conn.fetch(
            f"SELECT rule, COUNT(*) FROM requests WHERE ts >= $1 AND {_FILTER} "
            "GROUP BY rule ORDER BY COUNT(*) DESC, rule",
            since,
            traffic,
            *where.values(),
        )
        totals = await conn.fetchrow(
            f"""SELECT COUNT(*), SUM((json_array_length(attempts::json) > 1)::int),
                SUM((attempts LIKE '%:check_failed:%')::int), SUM((attempts LIKE '%:error:%')::int),
                SUM((cache LIKE 'hit%')::int), SUM((cache IS NOT NULL)::int),
                percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY latency_ms)
            FROM requests WHERE ts >= $1 AND {_FILTER}""",
            since,
            traffic,
            *where.values(),
        )
    assert totals is not None  # an aggregate without GROUP BY always returns one row
    latency = totals[6] or [None] * len(PERCENTILE_KEYS)
    counts = decision_dict([tuple(r) for r in by_rule], list(totals)[:6])
    return counts | {"latency": dict(zip(PERCENTILE_KEYS, map(_float, latency), strict=True))}


async def pg_request_log(
    conn: asyncpg.Connection,
    since: float,
    limit: int,
    traffic: str | None = LIVE,
    where: RowFilter = ANY_ROW,
) -> list[dict[str, Any]]:
    """``rollups.request_log`` in PostgreSQL."""
    records = await conn.fetch(
        f"""SELECT {", ".join(LOG_COLUMNS)} FROM requests WHERE ts >= $1 AND {_FILTER}
        ORDER BY ts DESC, id DESC LIMIT {_LIMIT}""",
        since,
        traffic,
        *where.values(),
        limit,
    )
    return [dict(zip(LOG_COLUMNS, r, strict=True)) for r in records]


async def pg_reported_models(conn: asyncpg.Connection, since: float) -> list[dict[str, Any]]:
    """``rollups.reported_models`` in PostgreSQL."""
    records = await conn.fetch(
        """SELECT backend, model, reported_model, MIN(ts), MAX(ts), COUNT(*) FROM requests
        WHERE ts >= $1 AND status < 400 AND reported_model IS NOT NULL AND backend IS NOT NULL
            AND model IS NOT NULL
        GROUP BY backend, model, reported_model ORDER BY backend, model, MIN(ts)""",
        since,
    )
    return [dict(zip(REPORTED_KEYS, r, strict=True)) for r in records]


async def pg_logged_prompts(
    conn: asyncpg.Connection, limit: int, skip: Sequence[str]
) -> list[dict[str, Any]]:
    """The newest ``limit`` successful rows with a logged prompt, none of a feature in ``skip``."""
    records = await conn.fetch(
        """SELECT request_id, prompt_text, cost_usd, latency_ms, privacy FROM requests
        WHERE prompt_text IS NOT NULL AND status = 200 AND traffic = 'live'
            AND NOT (COALESCE(feature, '') = ANY($1::text[]))
        ORDER BY ts DESC, id DESC LIMIT $2""",
        list(skip),
        limit,
    )
    return [dict(zip(PROMPT_KEYS, r, strict=True)) for r in records]
