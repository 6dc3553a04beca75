"""The learned routing's decision report, per route and feature, from the ledger database.

- ``strong_share``: answered live requests served by the route's strong tier (``try[-1]``);
- ``regret``: graded cheap answers judged bad (score below 0.5), over graded cheap answers;
- ``wasted_strong``: graded strong answers whose cheap counterpart was judged good, over graded
  strong answers (only the judge grades both tiers of one request);
- ``judge_cost_usd``: what grading cost (overhead).
Each request counts once, by its best grade (feedback, then judge, then check). Used by
``hybridgate usage --decisions`` and the dashboard. Pure: rows in, rows out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hybridgate.ledger.outcomes import Outcome, Outcomes

GOOD = 0.5
PRECEDENCE = {"feedback": 0, "judge": 1, "check": 2}


def best_grades(outcomes: Iterable[Outcome]) -> list[Outcome]:
    best: dict[tuple[str, str], Outcome] = {}
    for outcome in outcomes:
        if outcome.cheap_score is None:
            continue
        key = (outcome.request_id, outcome.api_key_id)
        kept = best.get(key)
        if kept is None or PRECEDENCE.get(outcome.source, 9) < PRECEDENCE.get(kept.source, 9):
            best[key] = outcome
    return list(best.values())


def decision_report(
    strong_tiers: Mapping[str, str], served: Sequence[Mapping[str, Any]], outcomes: Sequence[Outcome]
) -> list[dict[str, Any]]:
    """``strong_tiers``: route -> its strong backend (routes with two tiers or more)."""
    groups: dict[tuple[str, str | None], dict[str, Any]] = defaultdict(_empty)
    for row in served:
        route = str(row["route"])
        if route in strong_tiers:
            group = groups[(route, row["feature"])]
            group["requests"] += int(row["requests"])
            group["strong"] += int(row["requests"]) if row["backend"] == strong_tiers[route] else 0
    for outcome in outcomes:
        if outcome.route is not None and outcome.route in strong_tiers:
            groups[(outcome.route, outcome.feature)]["judge_cost_usd"] += outcome.judge_cost_usd
    for outcome in best_grades(outcomes):
        if outcome.route is None or outcome.route not in strong_tiers or outcome.cheap_score is None:
            continue
        group = groups[(outcome.route, outcome.feature)]
        good = outcome.cheap_score >= GOOD
        if outcome.served == "cheap":
            group["graded_cheap"] += 1
            group["bad_cheap"] += 0 if good else 1
        else:
            group["graded_strong"] += 1
            group["wasted"] += 1 if good else 0
    return [_finish(route, feature, g) for (route, feature), g in sorted(groups.items(), key=_order)]


def _order(item: tuple[tuple[str, str | None], Any]) -> tuple[str, str]:
    (route, feature), _ = item
    return route, "" if feature is None else "\x01" + feature


def _empty() -> dict[str, Any]:
    keys = ("requests", "strong", "graded_cheap", "bad_cheap", "graded_strong", "wasted")
    return {**dict.fromkeys(keys, 0), "judge_cost_usd": 0.0}


def _finish(route: str, feature: str | None, g: dict[str, Any]) -> dict[str, Any]:
    return {
        "route": route,
        "feature": feature,
        "requests": g["requests"],
        "strong_share": g["strong"] / g["requests"] if g["requests"] else None,
        "graded_cheap": g["graded_cheap"],
        "regret": g["bad_cheap"] / g["graded_cheap"] if g["graded_cheap"] else None,
        "graded_strong": g["graded_strong"],
        "wasted_strong": g["wasted"] / g["graded_strong"] if g["graded_strong"] else None,
        "judge_cost_usd": round(g["judge_cost_usd"], 8),
    }


def strong_tiers(routes: Mapping[str, Sequence[str]]) -> dict[str, str]:
    return {name: tiers[-1] for name, tiers in routes.items() if len(tiers) > 1}


async def read_report(
    store: Outcomes, routes: Mapping[str, Sequence[str]], since: float
) -> list[dict[str, Any]]:
    """The report from a started store (routes: name -> its ``try`` list)."""
    served = await store.served_by(since)
    return decision_report(strong_tiers(routes), served, await store.outcomes(since=since))


def render(rows: Sequence[Mapping[str, Any]]) -> str:
    """A fixed-width table for the CLI."""
    head = f"{'route':14} {'feature':14} {'requests':>8} {'strong':>7} {'graded':>7} {'regret':>7} "
    head += f"{'graded_s':>8} {'wasted_s':>8} {'judge_usd':>10}"
    lines = ["DECISIONS (learned routing; docs/ledger.md#decision-metrics)", head]
    for r in rows:
        lines.append(
            f"{r['route'][:14]:14} {str(r['feature'] or '-')[:14]:14} {r['requests']:>8} "
            f"{_pct(r['strong_share']):>7} {r['graded_cheap']:>7} {_pct(r['regret']):>7} "
            f"{r['graded_strong']:>8} {_pct(r['wasted_strong']):>8} {r['judge_cost_usd']:>10.6f}"
        )
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"
