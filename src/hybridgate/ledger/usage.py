"""Render ledger rollups for people (a table) or programs (JSON).

Offline side of the ledger: ``hybridgate usage`` calls ``SqliteLedger.usage()`` and prints what
``render_usage`` returns. Pure formatting: it must not query the database or print itself.
"""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

from rich.console import Console
from rich.table import Table

TABLE_WIDTH = 140


def render_usage(rows: list[dict[str, Any]], *, by: str, as_json: bool) -> str:
    """The rollup rows as a text table with a total line, or as a JSON array."""
    if as_json:
        return json.dumps(rows, indent=2)
    if not rows:
        return "No requests recorded in this period.\n"
    texts = any(row.get("texts") for row in rows)  # embeddings were served: show their inputs too
    table = _table(by, texts)
    for row in rows:
        table.add_row(*_cells(row, by, texts))
    _add_total(table, rows, texts)
    out = StringIO()
    Console(file=out, width=TABLE_WIDTH, color_system=None, force_terminal=False).print(table)
    return out.getvalue()


def _table(by: str, texts: bool) -> Table:
    table = Table(title=f"Usage by {by}", show_footer=False)
    table.add_column(by)
    for name in ("requests", "errors", "prompt tok", "completion tok", "cost $"):
        table.add_column(name, justify="right")
    for name in ("p50 ms", "p95 ms", "mean ttft ms"):
        table.add_column(name, justify="right")
    if texts:
        table.add_column("texts embedded", justify="right")
        table.add_column("from cache", justify="right")
    return table


def _cells(row: dict[str, Any], by: str, texts: bool) -> list[str]:
    label = row.get(by)
    return [
        "(none)" if label is None else str(label),
        f"{row['requests']:,}",
        f"{row['errors']:,}",
        f"{row['prompt_tokens']:,}",
        f"{row['completion_tokens']:,}",
        _dollars(row["cost_usd"]),
        _ms(row.get("latency_p50_ms")),
        _ms(row.get("latency_p95_ms")),
        _ms(row.get("ttft_mean_ms")),
        *(_texts(row.get("texts", 0), row.get("cached_texts", 0)) if texts else []),
    ]


def _texts(total: int, cached: int) -> list[str]:
    return [f"{total:,}", f"{cached / total:.0%}" if total else "-"]


def _add_total(table: Table, rows: list[dict[str, Any]], texts: bool) -> None:
    if len(rows) < 2:
        return
    table.add_section()
    table.add_row(
        "total",
        f"{sum(r['requests'] for r in rows):,}",
        f"{sum(r['errors'] for r in rows):,}",
        f"{sum(r['prompt_tokens'] for r in rows):,}",
        f"{sum(r['completion_tokens'] for r in rows):,}",
        _dollars(sum(r["cost_usd"] for r in rows)),
        # Percentiles don't add up across groups; leave them blank rather than mislead.
        "",
        "",
        "",
        *(_texts(_sum(rows, "texts"), _sum(rows, "cached_texts")) if texts else []),
    )


def _sum(rows: list[dict[str, Any]], key: str) -> int:
    return sum(int(r.get(key, 0)) for r in rows)


def _dollars(value: float) -> str:
    # Sub-cent amounts are common per group (local models, short prompts): keep them visible.
    return f"{value:,.4f}" if value < 1 else f"{value:,.2f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"
