"""Turn graded case results into a report: JSON (the stored form) and a markdown summary.

Offline tooling (``hybridgate eval``); pure functions over ``CaseResult`` lists, no I/O. The JSON
report is also what ``--baseline`` reads back for drift checks, so its shape is a contract:
``{"routes": {ROUTE: {"pass", "soft", "fail", "pass_rate", "cost_usd", "latency_p50_ms",
"latency_p95_ms", "tags": {...}, ...}}, "cases": [...]}``. The HTML page is in ``html.py``.

``--outcomes FILE`` writes the per-prompt, per-route table ``hybridgate router train`` learns from:
CSV with a ``prompt`` column (the case's full prompt text, as the router sees it), one outcome
column per route (1 pass, 0.5 soft, 0 fail) and one ``cost_<route>`` column per route in US
dollars. Nothing else goes in: the trainer treats every other column as a model's outcome.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from hybridgate.evals.graders import SCORES
from hybridgate.evals.runner import CaseResult
from hybridgate.evals.safety import SAFETY_HEADER, safety_rows, safety_summary, safety_tag_rows
from hybridgate.ledger.money import usd
from hybridgate.types import Json

REPORT_VERSION = 1


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def counts(results: Sequence[CaseResult]) -> Json:
    n = len(results)
    tally = {v: sum(1 for r in results if r.verdict == v) for v in ("pass", "soft", "fail")}
    score = sum(SCORES[r.verdict] for r in results)
    return {
        "cases": n,
        **tally,
        "pass_rate": round(tally["pass"] / n, 4) if n else 0.0,
        "score": round(score / n, 4) if n else 0.0,  # soft counts half
    }


def route_summary(results: Sequence[CaseResult]) -> Json:
    latencies = [r.latency_ms for r in results if r.latency_ms is not None]
    tags = sorted({t for r in results for t in r.tags})
    safety = safety_summary(results)
    return {
        **({"safety": safety} if safety is not None else {}),
        **counts(results),
        "errors": sum(1 for r in results if r.error),
        "cost_usd": round(sum(r.cost_usd for r in results), 8),
        "prompt_tokens": sum(r.prompt_tokens for r in results),
        "completion_tokens": sum(r.completion_tokens for r in results),
        "latency_p50_ms": _round(percentile(latencies, 0.5)),
        "latency_p95_ms": _round(percentile(latencies, 0.95)),
        "tags": {tag: counts([r for r in results if tag in r.tags]) for tag in tags},
    }


def build_report(
    results: Sequence[CaseResult], routes: Sequence[str], *, golden: str, name: str, started: float
) -> Json:
    """The JSON report for one run (``started`` is a ``time.time()`` value)."""
    return {
        "version": REPORT_VERSION,
        "golden": golden,
        "name": name,
        "created_at": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.time() - started, 2),
        "routes": {route: route_summary([r for r in results if r.route == route]) for route in routes},
        "judge_cost_usd": round(sum(r.judge_cost_usd for r in results), 8),
        "cases": [r.to_json() for r in results],
    }


def _cell(text: object) -> str:
    """A markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


def routes_table(report: Json) -> list[str]:
    header = ["route", "pass", "soft", "fail", "pass rate", "cost", "tokens in/out", "p50 ms", "p95 ms"]
    rows = [
        [
            route,
            s["pass"],
            s["soft"],
            s["fail"],
            f"{s['pass_rate']:.0%}",
            usd(s["cost_usd"]),
            f"{s['prompt_tokens']}/{s['completion_tokens']}",
            _ms(s["latency_p50_ms"]),
            _ms(s["latency_p95_ms"]),
        ]
        for route, s in report["routes"].items()
    ]
    return _table(header, rows)


def tags_table(report: Json) -> list[str]:
    routes = list(report["routes"])
    tags = sorted({t for s in report["routes"].values() for t in s["tags"]})
    rows = []
    for tag in tags:
        cells = []
        for route in routes:
            c = report["routes"][route]["tags"].get(tag)
            cells.append(f"{c['pass']}/{c['soft']}/{c['fail']}" if c else "-")
        rows.append([tag, *cells])
    return _table(["tag (pass/soft/fail)", *routes], rows)


def safety_tables(report: Json) -> list[str]:
    """Each route's refusal and leakage rates side by side, then by tag; empty without safety cases."""
    rows = safety_rows(report)
    if not rows:
        return []
    header, tag_rows = safety_tag_rows(report)
    return [*_table(SAFETY_HEADER, rows), "", *_table(header, tag_rows)]


def not_passed(report: Json) -> list[Json]:
    return [c for c in report["cases"] if c["verdict"] != "pass"]


def failures_table(report: Json, limit: int = 200) -> list[str]:
    rows = [
        [c["route"], c["case_id"], c["verdict"], c["answer"][:120] or "(empty)", c["reason"][:160]]
        for c in not_passed(report)[:limit]
    ]
    return _table(["route", "case", "verdict", "answer", "reason"], rows)


def to_markdown(report: Json) -> str:
    lines = [f"# Eval: {report['name']}", "", f"{report['golden']}, {report['created_at']}, "]
    lines[-1] += f"{report['duration_s']} s; judge cost {usd(report['judge_cost_usd'])}"
    lines += ["", "## Routes", "", *routes_table(report), "", "## By tag", "", *tags_table(report)]
    if safety := safety_tables(report):
        lines += ["", "## Safety", "", *safety]
    if not_passed(report):
        lines += ["", "## Not passed", "", *failures_table(report)]
    return "\n".join(lines) + "\n"


def outcome_rows(results: Sequence[CaseResult], routes: Sequence[str]) -> list[dict[str, str]]:
    """One row per case, in file order; a case missing on a route is left blank there."""
    by_case: dict[str, dict[str, CaseResult]] = {}
    for result in results:
        by_case.setdefault(result.case_id, {})[result.route] = result
    rows = []
    for per_route in by_case.values():
        first = next(iter(per_route.values()))
        row = {"prompt": first.prompt}
        for route in routes:
            found = per_route.get(route)
            row[route] = "" if found is None else f"{SCORES[found.verdict]:g}"
            row[f"cost_{route}"] = "" if found is None else f"{found.cost_usd:.8f}"
        rows.append(row)
    return rows


def outcomes_csv(results: Sequence[CaseResult], routes: Sequence[str]) -> str:
    columns = ["prompt", *routes, *(f"cost_{r}" for r in routes)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(outcome_rows(results, routes))
    return buffer.getvalue()


def write_outcomes(path: Path, results: Sequence[CaseResult], routes: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(outcomes_csv(results, routes))
