"""Assemble a TCO report from the model and render it as a table, JSON or CSV.

Offline: ``hybridgate tco`` builds one report and prints one rendering; the dashboard's projection
endpoint returns the same dict. Pure: the numbers come from ``tco.model``, and nothing here reads
files or prints.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from io import StringIO
from typing import Any

from rich.console import Console
from rich.table import Table

from hybridgate.ledger.money import usd
from hybridgate.tco.measure import Workload
from hybridgate.tco.model import (
    Assumptions,
    break_even_daily_tokens,
    compare,
    embed_api_monthly,
    embed_local_monthly,
    local_tier,
)
from hybridgate.tco.profiles import SECONDS_PER_DAY

ROW_FIELDS = ("daily_tokens", "api_monthly_usd", "selfhost_monthly_usd", "hybrid_monthly_usd")
TABLE_WIDTH = 120


def build_report(
    volumes: list[float],
    a: Assumptions,
    *,
    workload: Workload | None = None,
    sources: dict[str, str] | None = None,
    server: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole report as plain JSON-ready data; ``sources`` says where each input came from.

    With a ``workload``, its measured daily volume is priced too, as the last row (``measured``).
    ``server`` is a ``--measure`` load test (``ServerThroughput.to_dict()``) that set the throughput.
    """
    break_even = break_even_daily_tokens(a)
    measured = [] if workload is None else [workload.daily_tokens]
    rows = [
        {
            "daily_tokens": row.daily_tokens,
            "api_monthly_usd": round(row.api_monthly_usd, 2),
            "selfhost_monthly_usd": round(row.selfhost_monthly_usd, 2),
            "hybrid_monthly_usd": round(row.hybrid_monthly_usd, 2),
            "selfhost_nodes": row.selfhost_nodes,
            "cheapest": row.cheapest,
            "measured": i >= len(volumes),
        }
        for i, row in enumerate(compare([*volumes, *measured], a))
    ]
    return {
        "rows": rows,
        "break_even_daily_tokens": None if break_even is None else round(break_even, 2),
        "assumptions": _assumptions(a, sources or {}),
        "local_tier": local_tier(
            a.profile,
            workload.local_tps if workload else None,
            throughput_source=_throughput_source((sources or {}).get("throughput", "profile")),
        )
        | {"measured_server": server, "at_measured_volume": _at_volume(a, workload)},
        "savings": _savings(rows, workload),
        "embeddings": {
            "daily_tokens": a.embed_daily_tokens,
            "usd_per_mtok": a.embed_usd_per_mtok,
            "api_monthly_usd": round(embed_api_monthly(a), 2),
            "local_monthly_usd": round(embed_local_monthly(a), 2),
            "measured": None
            if workload is None or workload.embeddings is None
            else _rounded(dataclasses.asdict(workload.embeddings)),
        },
        "measured": None if workload is None else _rounded(dataclasses.asdict(workload)),
    }


def _at_volume(a: Assumptions, workload: Workload | None) -> dict[str, Any] | None:
    """The local tier at the ledger's volume: the nodes it needs, how busy they would be, and the
    $/Mtok at that utilisation (the tier's formula with the measured load instead of the assumed)."""
    if workload is None or a.profile.throughput_tps <= 0:
        return None
    volume = workload.daily_tokens * a.local_share * (1 + a.overhead)
    if volume <= 0:
        return None
    nodes = a.profile.nodes_for(volume)
    busy = volume / (nodes * a.profile.throughput_tps * SECONDS_PER_DAY)
    return {
        "daily_tokens": round(volume, 2),
        "nodes": nodes,
        "utilisation": round(busy, 6),
        "usd_per_mtok": round(a.profile.usd_per_mtok() * a.profile.utilisation / busy, 4),
    }


def _throughput_source(source: str) -> str:
    return "given (--throughput-tps)" if source == "given" else source


def _savings(rows: list[dict[str, Any]], workload: Workload | None) -> dict[str, Any]:
    """Hybrid against all-cloud at each volume; cache savings and escalation waste from the ledger."""
    hybrid = [round(r["api_monthly_usd"] - r["hybrid_monthly_usd"], 2) for r in rows]  # one per row
    o = workload.overhead if workload else None
    return {
        "hybrid_vs_api_monthly_usd": hybrid,
        "cache_saved_monthly_usd": None if o is None else round(o.cache_saved_daily_usd * 30, 4),
        "escalations": None if o is None else o.escalations,
        "escalation_wasted_tokens": None if o is None else o.wasted_tokens,
    }


def _assumptions(a: Assumptions, sources: dict[str, str]) -> dict[str, Any]:
    return {
        "api_usd_per_mtok": round(a.api_usd_per_mtok, 4),
        "profile": a.profile.name,
        "profile_title": a.profile.title,
        "selfhost_monthly_usd": a.selfhost_monthly_usd,
        "people_monthly_usd": None if a.selfhost_monthly_usd is not None else round(a.people.monthly_usd, 2),
        "local_share": round(a.local_share, 4),
        "overhead": a.overhead,
        "utilisation": a.profile.utilisation,
        "days_per_month": 30,
        "sources": sources,
    }


def _rounded(values: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in values.items()}


def render_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2)


def render_csv(report: dict[str, Any]) -> str:
    out = StringIO()
    writer = csv.DictWriter(
        out, fieldnames=[*ROW_FIELDS, "selfhost_nodes", "cheapest", "measured"], lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(report["rows"])
    return out.getvalue()


def render_table(report: dict[str, Any]) -> str:
    table = Table(title="Monthly cost by daily token volume (30-day months)")
    for name in ("tokens/day", "closed API $", "self-host $", "nodes", "hybrid $", "cheapest"):
        table.add_column(name, justify="left" if name == "cheapest" else "right")
    for row in report["rows"]:
        nodes = row["selfhost_nodes"]
        table.add_row(
            human_tokens(row["daily_tokens"]) + (" (ledger)" if row["measured"] else ""),
            f"{row['api_monthly_usd']:,.2f}",
            f"{row['selfhost_monthly_usd']:,.2f}",
            "-" if nodes is None else str(nodes),
            f"{row['hybrid_monthly_usd']:,.2f}",
            row["cheapest"],
        )
    out = StringIO()
    Console(file=out, width=TABLE_WIDTH, color_system=None, force_terminal=False).print(table)
    out.write("\n".join(_summary_lines(report)) + "\n")
    return out.getvalue()


def _summary_lines(report: dict[str, Any]) -> list[str]:
    a, tier = report["assumptions"], report["local_tier"]
    break_even = report["break_even_daily_tokens"]
    verdict = "never, at these prices" if break_even is None else f"{human_tokens(break_even)} tokens/day"
    people = a["people_monthly_usd"]
    lines = [
        f"break-even: {verdict}",
        f"API price: ${a['api_usd_per_mtok']:g}/Mtok ({a['sources'].get('price', 'given')})",
        f"self-host: {_hardware(a, tier)}"
        + ("" if a["selfhost_monthly_usd"] is None else f", all-in ${a['selfhost_monthly_usd']:,.0f}/month"),
        "people: included in the all-in figure"
        if people is None
        else f"people: {usd(people)}/month ({a['sources'].get('people', 'given')})",
        f"hybrid: {a['local_share']:.0%} of tokens local ({a['sources'].get('local_share', 'given')})",
        f"local tier: {tier['throughput_tps']:,} tokens/s ({tier['throughput_source']}) at "
        f"{tier['utilisation']:.0%} utilisation -> "
        + ("-" if tier["usd_per_mtok"] is None else f"{usd(tier['usd_per_mtok'])}/Mtok"),
        *([] if tier.get("measured_server") is None else _server_lines(tier["measured_server"])),
        *([] if (v := tier.get("at_measured_volume")) is None else [_volume_line(v)]),
        f"overhead: +{a['overhead']:.0%} tokens for retries, escalations, evals, replays and shadows "
        f"({a['sources'].get('overhead', 'given')})",
    ]
    if tier.get("gateway_measured_tps") is not None:
        hint = (
            "the measured server's speed prices it"
            if tier.get("measured_server")
            else "pass --measure URL or --throughput-tps"
        )
        lines.append(
            f"  (this gateway's local backends ran {tier['gateway_measured_tps']:,} tokens/s on its own "
            f"machine; not used to price the profile's hardware: {hint})"
        )
    lines.append(_embeddings_line(report["embeddings"], a["sources"]))
    lines.extend(_savings_lines(report))
    if report["measured"] is not None:
        m = report["measured"]
        lines.append(
            f"measured: {m['requests']:,} requests over {m['days']:.1f} days, "
            f"{m['input_share']:.0%} prompt tokens, shape {m['shape']}"
        )
    return lines


def _volume_line(v: dict[str, Any]) -> str:
    return (
        f"  at the ledger's volume ({human_tokens(v['daily_tokens'])} local tokens/day): {v['nodes']} "
        f"node{'s' if v['nodes'] > 1 else ''} {v['utilisation']:.2%} busy -> {usd(v['usd_per_mtok'])}/Mtok"
    )


def _hardware(a: dict[str, Any], tier: dict[str, Any]) -> str:
    if tier.get("measured_server") is None:
        return str(a["profile_title"])
    return f"the measured server's hardware at ${tier['gpu_hourly_usd']:g}/hour"


def _server_lines(server: dict[str, Any]) -> list[str]:
    """Each concurrency level of a ``--measure`` load test, and whether it ran to the end."""
    lines = [f"  measured {server['url']} ({server['model']}, up to {server['max_tokens']} tokens a reply):"]
    for level in server["levels"]:
        ttft = level["ttft_p50_ms"], level["ttft_p95_ms"]
        lines.append(
            f"    concurrency {level['concurrency']}: {level['output_tps']:,} output tokens/s, "
            f"TTFT p50 {_ms(ttft[0])} p95 {_ms(ttft[1])}, "
            f"{level['requests']} answered, {level['errors']} failed or cut short"
        )
    if not server["complete"]:
        lines.append("    incomplete: requests failed or the budget ran out; the figure is a lower bound")
    return lines


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def _savings_lines(report: dict[str, Any]) -> list[str]:
    s = report["savings"]
    rows = report["rows"]
    row = next((r for r in rows if r["measured"]), rows[-1] if rows else None)
    lines = []
    if row is not None:
        saved = row["api_monthly_usd"] - row["hybrid_monthly_usd"]
        what = "saves" if saved >= 0 else "costs"
        lines.append(
            f"hybrid vs all-cloud at {human_tokens(row['daily_tokens'])} tokens/day: {what} "
            f"{usd(abs(saved))}/month"
        )
    if s["cache_saved_monthly_usd"] is not None:
        lines.append(
            f"ledger: the response cache saved {usd(s['cache_saved_monthly_usd'])}/month; "
            f"{s['escalations']:,} escalations wasted {s['escalation_wasted_tokens']:,} tokens"
        )
    return lines


def _embeddings_line(e: dict[str, Any], sources: dict[str, str]) -> str:
    """Embeddings in plain words: they hide on chat dashboards, so the table always says them."""
    if not e["daily_tokens"]:
        return "embeddings: none counted (pass --embed-daily-tokens, or --from-ledger with embeddings)"
    line = (
        f"embeddings: {human_tokens(e['daily_tokens'])} tokens/day "
        f"({sources.get('embed_daily_tokens', 'given')}) at ${e['usd_per_mtok']:g}/Mtok "
        f"({sources.get('embed_price', 'given')}) -> API ${e['api_monthly_usd']:,.2f}/month, "
        f"self-hosted ${e['local_monthly_usd']:,.2f}/month"
    )
    if (m := e["measured"]) is not None:
        line += f"; {m['hit_rate']:.0%} of {human_tokens(m['daily_texts'])} texts/day came from the cache"
    return line


def human_tokens(value: float) -> str:
    """33_333_333 -> '33.3M'; 500_000 -> '500k'."""
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.0f}"
