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

from hybridgate.ledger.money import per_1k, usd

TABLE_WIDTH = 200


def render_usage(
    rows: list[dict[str, Any]],
    *,
    by: str,
    as_json: bool,
    traffic: str = "live",
    classes: list[dict[str, Any]] | None = None,
) -> str:
    """The rollup rows as a text table with a total line, or as a JSON array. ``classes`` (rows
    grouped by traffic class, every class) adds the gateway's own traffic as measured overhead."""
    if as_json:
        return json.dumps(rows, indent=2)
    out = StringIO()
    console = Console(file=out, width=TABLE_WIDTH, color_system=None, force_terminal=False)
    if not rows:
        console.print(
            "No requests recorded in this period" + ("." if traffic == "all" else f" ({traffic} traffic).")
        )
    else:
        texts = any(row.get("texts") for row in rows)  # embeddings were served: show their inputs too
        table = _table(by, texts, traffic)
        for row in rows:
            table.add_row(*_cells(row, by, texts))
        _add_total(table, rows, texts)
        console.print(table)
        console.print(_savings(rows))
    if classes:
        console.print(overhead_text(classes))
    return out.getvalue()


def _savings(rows: list[dict[str, Any]]) -> str:
    """Cache savings and what escalations threw away, over the rows shown."""
    saved = sum(float(r.get("saved_usd", 0.0)) for r in rows)
    escalations = _sum(rows, "escalations")
    wasted = _sum(rows, "wasted_tokens")
    return (
        f"Cache saved {usd(saved)} (what the cached answers cost when first made); "
        f"{escalations:,} escalations wasted {wasted:,} tokens of cheaper tiers' answers (their cost "
        "is included above)."
    )


def all_cloud_text(backends: list[dict[str, Any]], local: set[str]) -> str | None:
    """Savings against all-cloud from a ``traffic`` view: the local tiers' tokens priced at what the
    cloud tiers measurably cost per token in the same period. None without both kinds of traffic."""

    def tokens(rows: list[dict[str, Any]]) -> int:
        return sum(int(r["prompt_tokens"]) + int(r["completion_tokens"]) for r in rows)

    on_prem = [b for b in backends if b["backend"] in local]
    cloud = [b for b in backends if b["backend"] not in local]
    cloud_tokens, cloud_usd = tokens(cloud), sum(float(b["cost_usd"]) for b in cloud)
    if not on_prem or not cloud_tokens or cloud_usd <= 0:
        return None
    per_mtok = cloud_usd / cloud_tokens * 1_000_000
    saved = tokens(on_prem) * per_mtok / 1_000_000
    return (
        f"Versus all-cloud: the local tiers served {tokens(on_prem):,} tokens, which at the cloud tiers' "
        f"measured {usd(per_mtok)}/Mtok would have cost {usd(saved)} (the local tiers' own hardware "
        "cost is not in the ledger: `hybridgate tco --from-ledger` nets it out)."
    )


def overhead_text(classes: list[dict[str, Any]]) -> str:
    """Live traffic against the gateway's own (shadow, replay, eval, judge): the measured overhead."""
    total_cost = sum(float(r["cost_usd"]) for r in classes)
    total_tokens = sum(int(r["prompt_tokens"]) + int(r["completion_tokens"]) for r in classes)
    live = next((r for r in classes if r.get("traffic") == "live"), None)
    live_cost = float(live["cost_usd"]) if live else 0.0
    lines = ["Traffic classes (live is demand; the rest is the gateway's own measured overhead):"]
    for row in sorted(classes, key=lambda r: (r.get("traffic") != "live", str(r.get("traffic")))):
        tokens = int(row["prompt_tokens"]) + int(row["completion_tokens"])
        cost = float(row["cost_usd"])
        share = f"{cost / total_cost:.0%} of spend" if total_cost else "-"
        lines.append(
            f"  {row.get('traffic')!s:<7} {row['requests']:>8,} requests  {tokens:>12,} tokens  "
            f"{usd(cost):>12}  ({share}, {tokens / total_tokens:.0%} of tokens)"
            if total_tokens
            else f"  {row.get('traffic')!s:<7} {row['requests']:>8,} requests  {usd(cost):>12}"
        )
    overhead = total_cost - live_cost
    ratio = f" = {overhead / live_cost:.0%} on top of live spend" if live_cost else ""
    lines.append(f"  overhead {usd(overhead)}{ratio}")
    return "\n".join(lines)


def _table(by: str, texts: bool, traffic: str) -> Table:
    title = f"Usage by {by}" + ("" if traffic == "all" else f" ({traffic} traffic)")
    table = Table(title=title, show_footer=False)
    table.add_column(by, no_wrap=True)
    for name in ("requests", "errors", "prompt tok", "completion tok", "cost", "per 1k req", "cache saved"):
        table.add_column(name, justify="right", no_wrap=True)
    for name in ("p50 ms", "p95 ms", "mean ttft ms"):
        table.add_column(name, justify="right", no_wrap=True)
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
        usd(row["cost_usd"]),
        per_1k(row["cost_usd"], row["requests"]),
        usd(row.get("saved_usd", 0.0)),
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
        usd(sum(r["cost_usd"] for r in rows)),
        per_1k(sum(r["cost_usd"] for r in rows), sum(r["requests"] for r in rows)),
        usd(sum(float(r.get("saved_usd", 0.0)) for r in rows)),
        # Percentiles don't add up across groups; leave them blank rather than mislead.
        "",
        "",
        "",
        *(_texts(_sum(rows, "texts"), _sum(rows, "cached_texts")) if texts else []),
    )


def _sum(rows: list[dict[str, Any]], key: str) -> int:
    return sum(int(r.get(key, 0)) for r in rows)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"
