"""The eval report as one self-contained HTML page, with a cost-versus-pass-rate chart.

Offline tooling (``hybridgate eval --out DIR``); pure string building, no I/O. The chart is
hand-written SVG (no plotting library is a dependency): one point per route, x = dollars per
1,000 requests, y = pass rate, so the cheapest route that is good enough sits top left. Every
value from a report is escaped: answers are model output and may contain markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from hybridgate.evals.report import not_passed
from hybridgate.evals.safety import SAFETY_HEADER, safety_rows, safety_tag_rows
from hybridgate.ledger.money import usd
from hybridgate.types import Json

WIDTH, HEIGHT = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 70, 30, 20, 50
STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
td { max-width: 420px; overflow-wrap: anywhere; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #1a7f37; } .soft { color: #9a6700; } .fail { color: #cf222e; }
pre { white-space: pre-wrap; margin: 0; max-width: 420px; }
"""


def cost_per_1k(summary: Json) -> float:
    return float(summary["cost_usd"]) / summary["cases"] * 1000 if summary["cases"] else 0.0


def _ticks(top: float, count: int = 5) -> list[float]:
    return [top * i / count for i in range(count + 1)]


def chart(report: Json) -> str:
    """An SVG scatter plot of the routes: cost per 1,000 requests against pass rate."""
    points = [(route, cost_per_1k(s), float(s["pass_rate"])) for route, s in report["routes"].items()]
    top_cost = max((cost for _, cost, _ in points), default=0.0) * 1.1 or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(cost: float) -> float:
        return LEFT + cost / top_cost * plot_w

    def y(rate: float) -> float:
        return TOP + (1 - rate) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="cost versus pass rate per route">',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" stroke="#444"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#444"/>',
    ]
    for tick in _ticks(top_cost):
        parts.append(
            f'<text x="{x(tick):.1f}" y="{TOP + plot_h + 18}" font-size="11" text-anchor="middle">'
            f"{tick:.4g}</text>"
        )
    for tick in _ticks(1.0):
        parts.append(
            f'<line x1="{LEFT}" y1="{y(tick):.1f}" x2="{LEFT + plot_w}" y2="{y(tick):.1f}" stroke="#eee"/>'
        )
        parts.append(
            f'<text x="{LEFT - 8}" y="{y(tick) + 4:.1f}" font-size="11" text-anchor="end">{tick:.0%}</text>'
        )
    parts.append(
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 10}" font-size="12" text-anchor="middle">'
        "USD per 1,000 requests</text>"
    )
    parts.append(
        f'<text x="16" y="{TOP + plot_h / 2}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 16 {TOP + plot_h / 2})">pass rate</text>'
    )
    for route, cost, rate in points:
        label = escape(route)
        parts.append(
            f'<circle cx="{x(cost):.1f}" cy="{y(rate):.1f}" r="6" fill="#0969da">'
            f"<title>{label}: {rate:.0%} pass, {cost:.4g} USD / 1k requests</title></circle>"
        )
        parts.append(f'<text x="{x(cost) + 9:.1f}" y="{y(rate) - 8:.1f}" font-size="12">{label}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _row(cells: Sequence[object], numeric: Sequence[bool] = ()) -> str:
    out = []
    for i, cell in enumerate(cells):
        cls = ' class="num"' if i < len(numeric) and numeric[i] else ""
        out.append(f"<td{cls}>{cell}</td>")
    return "<tr>" + "".join(out) + "</tr>"


def _routes_table(report: Json) -> str:
    head = "route pass soft fail pass&nbsp;rate cost&nbsp;USD tokens&nbsp;in/out p50&nbsp;ms p95&nbsp;ms"
    rows = [
        _row(
            [
                escape(route),
                s["pass"],
                s["soft"],
                s["fail"],
                f"{s['pass_rate']:.0%}",
                usd(s["cost_usd"]),
                f"{s['prompt_tokens']}/{s['completion_tokens']}",
                s["latency_p50_ms"] if s["latency_p50_ms"] is not None else "-",
                s["latency_p95_ms"] if s["latency_p95_ms"] is not None else "-",
            ],
            [False, *[True] * 8],
        )
        for route, s in report["routes"].items()
    ]
    return _table(head.split(), rows)


def _tags_table(report: Json) -> str:
    routes = list(report["routes"])
    tags = sorted({t for s in report["routes"].values() for t in s["tags"]})
    rows = []
    for tag in tags:
        cells = [report["routes"][r]["tags"].get(tag) for r in routes]
        rows.append(
            _row([escape(tag), *(f"{c['pass']}/{c['soft']}/{c['fail']}" if c else "-" for c in cells)])
        )
    return _table(["tag&nbsp;(pass/soft/fail)", *map(escape, routes)], rows)


def _failures_table(report: Json) -> str:
    rows = [
        _row(
            [
                escape(c["route"]),
                escape(c["case_id"]),
                f'<span class="{c["verdict"]}">{c["verdict"]}</span>',
                f"<pre>{escape(c['answer'][:400]) or '(empty)'}</pre>",
                escape(c["reason"]),
            ]
        )
        for c in not_passed(report)
    ]
    return _table(["route", "case", "verdict", "answer", "reason"], rows)


def _table(head: Sequence[str], rows: Sequence[str]) -> str:
    header = "<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"
    return "<table>\n" + header + "\n" + "\n".join(rows) + "\n</table>"


def to_html(report: Json) -> str:
    title = escape(f"Eval: {report['name']}")
    meta = escape(f"{report['golden']}, {report['created_at']}, {report['duration_s']} s")
    body = [
        f"<h1>{title}</h1>",
        f"<p>{meta}; judge cost {usd(report['judge_cost_usd'])}</p>",
        "<h2>Cost versus pass rate</h2>",
        chart(report),
        "<h2>Routes</h2>",
        _routes_table(report),
        "<h2>By tag</h2>",
        _tags_table(report),
    ]
    if rows := safety_rows(report):
        tag_head, tag_rows = safety_tag_rows(report)
        body += [
            "<h2>Safety: refusal and leakage per route</h2>",
            _table([escape(h) for h in SAFETY_HEADER], [_row([escape(c) for c in row]) for row in rows]),
            _table([escape(h) for h in tag_head], [_row([escape(c) for c in row]) for row in tag_rows]),
        ]
    if not_passed(report):
        body += ["<h2>Not passed</h2>", _failures_table(report)]
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
