"""Usage rollups over the ledger's ``requests`` table: per-group totals and latency percentiles.

Read side of layer 5, used by ``SqliteLedger.usage`` (and so by ``hybridgate usage``). It only
runs SELECTs on a connection it is given; it must not open databases or write.
"""

from __future__ import annotations

import sqlite3
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
    "day": "strftime('%Y-%m-%d', ts, 'unixepoch')",
}


def check_group(by: str) -> None:
    if by not in USAGE_GROUPS:
        raise ValueError(f"cannot group usage by '{by}'; choose one of: {', '.join(USAGE_GROUPS)}")


def rollup(conn: sqlite3.Connection, by: str, since: float) -> list[dict[str, Any]]:
    """One dict per group of requests since ``since``: by day in date order, else costliest first.

    ``conn`` must be in autocommit mode (``isolation_level=None``) with ``sqlite3.Row`` rows, so
    both queries can share one explicit read transaction.
    """
    check_group(by)
    totals, latencies = _usage_rows(conn, USAGE_GROUPS[by], since)
    rows = [_rollup(by, row, latencies.get(row["k"], [])) for row in totals]
    if by == "day":
        return sorted(rows, key=lambda r: str(r[by]))
    return sorted(rows, key=lambda r: (-r["cost_usd"], -r["requests"], str(r[by])))


def _usage_rows(
    conn: sqlite3.Connection, key: str, since: float
) -> tuple[list[sqlite3.Row], dict[Any, list[float]]]:
    """Per-group sums from SQL, and each group's latencies for percentiles, in one snapshot."""
    conn.execute("BEGIN")
    try:
        totals = conn.execute(
            f"""SELECT {key} AS k, COUNT(*) AS requests, SUM(status >= 400) AS errors,
                SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens,
                SUM(cost_usd) AS cost_usd, AVG(ttft_ms) AS ttft_mean_ms
            FROM requests WHERE ts >= ? GROUP BY k""",
            (since,),
        ).fetchall()
        latencies: dict[Any, list[float]] = {}
        cur = conn.execute(f"SELECT {key} AS k, latency_ms FROM requests WHERE ts >= ?", (since,))
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
    }


def percentile(ordered: list[float], pct: float) -> float | None:
    """The ``pct``th percentile of sorted values, interpolating linearly between ranks."""
    if not ordered:
        return None
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
