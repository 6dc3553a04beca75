"""Usage rollups over the ledger's ``requests`` table: per-group totals and latency percentiles.

Read side of layer 5: the SQLite half of the ``Ledger`` read methods (``store.SqliteLedger`` opens
the file and calls these), and so of ``hybridgate usage``, ``tco``/``decide``, ``replay
--from-ledger`` and the dashboard's JSON endpoints. ``pg_rollups`` holds the same queries for
PostgreSQL, returning the same shapes. It only runs SELECTs on a connection it is given; it must
not open databases or write.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# What `usage(by=...)` can group on, and the SQL expression for each.
USAGE_GROUPS: dict[str, str] = {
    "feature": "feature",
    "cohort": "cohort",
    "route": "route",
    "model": "model",
    "backend": "backend",
    "environment": "environment",
    "api_key": "api_key_id",
    "api": "api",  # openai | anthropic | embeddings: chat and embeddings side by side
    "traffic": "traffic",  # live | shadow | replay | eval | judge
    "day": "strftime('%Y-%m-%d', ts, 'unixepoch')",
}

PERCENTILES = (50, 95, 99)
LIVE = "live"
# Filter on the traffic class: ``(?, ?)`` params are (cls, cls); None means every class.
TRAFFIC_SQL = "(? IS NULL OR traffic = ?)"


@dataclass(frozen=True)
class RowFilter:
    """The dashboard's filters besides time and traffic class: each None matches every row."""

    feature: str | None = None
    cohort: str | None = None
    route: str | None = None
    environment: str | None = None
    api_key: str | None = None  # the key's id (``api_key_id``), never the key itself

    def values(self) -> tuple[str | None, ...]:
        return tuple(getattr(self, name) for name in FILTER_COLUMNS)


ANY_ROW = RowFilter()
# RowFilter's fields and the column each one matches, in order.
FILTER_COLUMNS = {
    "feature": "feature",
    "cohort": "cohort",
    "route": "route",
    "environment": "environment",
    "api_key": "api_key_id",
}
# The traffic class and the RowFilter; params from ``filter_params``.
FILTER_SQL = " AND ".join([TRAFFIC_SQL, *(f"(? IS NULL OR {col} = ?)" for col in FILTER_COLUMNS.values())])


def filter_params(traffic: str | None, where: RowFilter) -> tuple[str | None, ...]:
    return tuple(v for value in (traffic, *where.values()) for v in (value, value))


PERCENTILE_KEYS = tuple(f"p{pct}_ms" for pct in PERCENTILES)
PROMPT_KEYS = ("request_id", "prompt_text", "cost_usd", "latency_ms", "privacy")
REPORTED_KEYS = ("backend", "model", "reported_model", "first_ts", "last_ts", "requests")


def check_group(by: str) -> None:
    if by not in USAGE_GROUPS:
        raise ValueError(f"cannot group usage by '{by}'; choose one of: {', '.join(USAGE_GROUPS)}")


def rollup(
    conn: sqlite3.Connection,
    by: str,
    since: float,
    traffic: str | None = LIVE,
    where: RowFilter = ANY_ROW,
) -> list[dict[str, Any]]:
    """One dict per group of requests since ``since``: by day in date order, else costliest first.

    ``conn`` must be in autocommit mode (``isolation_level=None``) with ``sqlite3.Row`` rows, so
    both queries can share one explicit read transaction.
    """
    check_group(by)
    totals, latencies = _usage_rows(conn, USAGE_GROUPS[by], since, filter_params(traffic, where))
    rows = [_rollup(by, row, latencies.get(row["k"], [])) for row in totals]
    if by == "day":
        return sorted(rows, key=lambda r: str(r[by]))
    return sorted(rows, key=lambda r: (-r["cost_usd"], -r["requests"], str(r[by])))


def _usage_rows(
    conn: sqlite3.Connection, key: str, since: float, params: tuple[str | None, ...]
) -> tuple[list[sqlite3.Row], dict[Any, list[float]]]:
    """Per-group sums from SQL, and each group's latencies for percentiles, in one snapshot."""
    conn.execute("BEGIN")
    try:
        totals = conn.execute(
            f"""SELECT {key} AS k, COUNT(*) AS requests, SUM(status >= 400) AS errors,
                SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens,
                SUM(cost_usd) AS cost_usd, AVG(ttft_ms) AS ttft_mean_ms,
                SUM(texts) AS texts, SUM(cached_texts) AS cached_texts,
                SUM(saved_usd) AS saved_usd, SUM(escalations) AS escalations,
                SUM(wasted_tokens) AS wasted_tokens
            FROM requests WHERE ts >= ? AND {FILTER_SQL} GROUP BY k""",
            (since, *params),
        ).fetchall()
        latencies: dict[Any, list[float]] = {}
        cur = conn.execute(
            f"SELECT {key} AS k, latency_ms FROM requests WHERE ts >= ? AND {FILTER_SQL}",
            (since, *params),
        )
        for k, latency in cur:
            latencies.setdefault(k, []).append(float(latency))
    finally:
        conn.execute("COMMIT")
    return totals, latencies


def _rollup(by: str, row: sqlite3.Row, latencies: list[float]) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {
        by: row["k"],
        "requests": int(row["requests"]),
        "errors": int(row["errors"] or 0),
        "prompt_tokens": int(row["prompt_tokens"] or 0),
        "completion_tokens": int(row["completion_tokens"] or 0),
        "cost_usd": float(row["cost_usd"] or 0.0),
        "latency_p50_ms": percentile(ordered, 50),
        "latency_p95_ms": percentile(ordered, 95),
        "ttft_mean_ms": None if row["ttft_mean_ms"] is None else float(row["ttft_mean_ms"]),
        "texts": int(row["texts"] or 0),
        "cached_texts": int(row["cached_texts"] or 0),
        "saved_usd": float(row["saved_usd"] or 0.0),
        "escalations": int(row["escalations"] or 0),
        "wasted_tokens": int(row["wasted_tokens"] or 0),
    }


def percentile(ordered: list[float], pct: float) -> float | None:
    """The ``pct``th percentile of sorted values, interpolating linearly between ranks."""
    if not ordered:
        return None
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# -- read-only views for TCO and the dashboard (offline readers; same SELECT-only rule) ---------


def daily_series(
    conn: sqlite3.Connection,
    by: str,
    since: float,
    traffic: str | None = LIVE,
    where: RowFilter = ANY_ROW,
) -> list[dict[str, Any]]:
    """Requests, tokens and cost per day and ``by`` group since ``since``, in date order."""
    check_group(by)
    cur = conn.execute(
        f"""SELECT strftime('%Y-%m-%d', ts, 'unixepoch') AS day, {USAGE_GROUPS[by]} AS k,
            COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost_usd)
        FROM requests WHERE ts >= ? AND {FILTER_SQL} GROUP BY day, k ORDER BY day, k""",
        (since, *filter_params(traffic, where)),
    )
    return [
        {
            "day": day,
            by: k,
            "requests": n,
            "prompt_tokens": int(p or 0),
            "completion_tokens": int(c or 0),
            "cost_usd": float(cost or 0.0),
        }
        for day, k, n, p, c, cost in cur
    ]


def backend_totals(
    conn: sqlite3.Connection, since: float, traffic: str | None = LIVE
) -> list[dict[str, Any]]:
    """Per chat backend: token mix, spend, and the wall time spent serving successful requests
    (embeddings are their own workload: ``usage(by="api")``).

    ``served_tokens / busy_s`` is the backend's measured throughput for one request at a time.
    """
    cur = conn.execute(
        f"""SELECT backend, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost_usd),
            SUM(CASE WHEN status < 400 THEN prompt_tokens + completion_tokens ELSE 0 END),
            SUM(CASE WHEN status < 400 THEN latency_ms ELSE 0 END) / 1000.0, MIN(ts), MAX(ts)
        FROM requests WHERE ts >= ? AND backend IS NOT NULL AND api <> 'embeddings' AND {TRAFFIC_SQL}
        GROUP BY backend ORDER BY backend""",
        (since, traffic, traffic),
    )
    keys = ("backend", "requests", "prompt_tokens", "completion_tokens", "cost_usd")
    return [
        dict(zip(keys, row[:5], strict=True))
        | {
            "served_tokens": int(row[5] or 0),
            "busy_s": float(row[6] or 0.0),
            "first_ts": float(row[7]),
            "last_ts": float(row[8]),
        }
        for row in cur
    ]


def hourly_tokens(conn: sqlite3.Connection, since: float, traffic: str | None = LIVE) -> dict[int, int]:
    """Chat tokens per hour (keyed by hours since the epoch) since ``since``; empty hours are absent."""
    cur = conn.execute(
        f"""SELECT CAST(ts / 3600 AS INTEGER) AS h, SUM(prompt_tokens + completion_tokens)
        FROM requests WHERE ts >= ? AND api <> 'embeddings' AND {TRAFFIC_SQL} GROUP BY h""",
        (since, traffic, traffic),
    )
    return {int(hour): int(tokens or 0) for hour, tokens in cur}


def decision_counts(
    conn: sqlite3.Connection,
    since: float,
    traffic: str | None = LIVE,
    where: RowFilter = ANY_ROW,
) -> dict[str, Any]:
    """Router rules that decided, escalations along the cascade, and cache lookups.

    An escalation is a request that tried more than one backend; ``attempts`` entries are the
    text of ``cascade.attempt.Attempt`` (``backend:ok``, ``backend:error:<type>``,
    ``backend:check_failed:<check>``...).
    """
    by_rule = conn.execute(
        f"SELECT rule, COUNT(*) FROM requests WHERE ts >= ? AND {FILTER_SQL} "
        "GROUP BY rule ORDER BY COUNT(*) DESC",
        (since, *filter_params(traffic, where)),
    ).fetchall()
    row = conn.execute(
        f"""SELECT COUNT(*), SUM(json_array_length(attempts) > 1),
            SUM(attempts LIKE '%:check_failed:%'), SUM(attempts LIKE '%:error:%'),
            SUM(cache LIKE 'hit%'), SUM(cache IS NOT NULL)
        FROM requests WHERE ts >= ? AND {FILTER_SQL}""",
        (since, *filter_params(traffic, where)),
    ).fetchone()
    return decision_dict(by_rule, row)


def decision_dict(by_rule: Iterable[Sequence[Any]], totals: Sequence[Any]) -> dict[str, Any]:
    """``decision_counts``' shape from (rule, count) pairs and the six totals, in either store."""
    requests, escalated, check_failed, errors, hits, lookups = (int(v or 0) for v in totals)
    return {
        "requests": requests,
        "by_rule": {str(rule) if rule is not None else "(none)": int(n) for rule, n in by_rule},
        "escalated": escalated,
        "check_failed": check_failed,
        "attempt_errors": errors,
        "cache_hits": hits,
        "cache_lookups": lookups,
    }


def no_decisions() -> dict[str, Any]:
    """What ``decisions`` reads from a ledger with no rows: every count zero, no percentiles."""
    return decision_dict([], [0] * 6) | {"latency": dict.fromkeys(PERCENTILE_KEYS)}


def latency_percentiles(
    conn: sqlite3.Connection,
    since: float,
    traffic: str | None = LIVE,
    where: RowFilter = ANY_ROW,
) -> dict[str, float | None]:
    """p50/p95/p99 of request latency in milliseconds over every request since ``since``."""
    ordered = [
        float(v)
        for (v,) in conn.execute(
            f"SELECT latency_ms FROM requests WHERE ts >= ? AND {FILTER_SQL} ORDER BY latency_ms",
            (since, *filter_params(traffic, where)),
        )
    ]
    return {f"p{pct}_ms": percentile(ordered, pct) for pct in PERCENTILES}


# The request log: metadata only (never prompt_text), newest first.
LOG_COLUMNS = (
    "ts",
    "request_id",
    "api",
    "traffic",
    "environment",
    "api_key_id",
    "feature",
    "cohort",
    "route",
    "rule",
    "backend",
    "model",
    "reported_model",
    "status",
    "error_type",
    "stream",
    "cache",
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
    "ttft_ms",
    "cost_usd",
    "saved_usd",
    "escalations",
    "privacy",
)


def request_log(
    conn: sqlite3.Connection,
    since: float,
    limit: int,
    traffic: str | None = LIVE,
    where: RowFilter = ANY_ROW,
) -> list[dict[str, Any]]:
    """The newest ``limit`` rows since ``since`` matching the filters: ``LOG_COLUMNS`` only."""
    cur = conn.execute(
        f"""SELECT {", ".join(LOG_COLUMNS)} FROM requests WHERE ts >= ? AND {FILTER_SQL}
        ORDER BY ts DESC, id DESC LIMIT ?""",
        (since, *filter_params(traffic, where), limit),
    )
    return [dict(zip(LOG_COLUMNS, row, strict=True)) for row in cur]


def reported_models(conn: sqlite3.Connection, since: float) -> list[dict[str, Any]]:
    """Per backend and requested model, each model the upstream reported answering as (drift)."""
    cur = conn.execute(
        """SELECT backend, model, reported_model, MIN(ts), MAX(ts), COUNT(*) FROM requests
        WHERE ts >= ? AND status < 400 AND reported_model IS NOT NULL AND backend IS NOT NULL
            AND model IS NOT NULL
        GROUP BY backend, model, reported_model ORDER BY backend, model, MIN(ts)""",
        (since,),
    )
    return [dict(zip(REPORTED_KEYS, row, strict=True)) for row in cur]


def logged_prompts(conn: sqlite3.Connection, limit: int, skip: Sequence[str]) -> list[dict[str, Any]]:
    """The newest ``limit`` successful rows with a logged prompt, none of a feature in ``skip``."""
    unless = f"AND COALESCE(feature, '') NOT IN ({', '.join('?' for _ in skip)})" if skip else ""
    cur = conn.execute(
        f"""SELECT request_id, prompt_text, cost_usd, latency_ms, privacy FROM requests
        WHERE prompt_text IS NOT NULL AND status = 200 AND traffic = 'live' {unless}
        ORDER BY ts DESC, id DESC LIMIT ?""",
        (*skip, limit),
    )
    return [dict(zip(PROMPT_KEYS, row, strict=True)) for row in cur]
