"""Replay a golden set through the current config and a candidate config, and compare them.

Offline tooling (``hybridgate replay --policy candidate.toml GOLDEN``); never imported by the
request path. Both configs run the same cases through their own gateway, one after the other, on
the same routes (by default ``auto``: whatever each policy's rules decide). The comparison is per
route: pass / soft / fail, pass rate, cost and latency for each side and the difference, where the
answers went (backends), and every case whose verdict changed. Replaying logged traffic, which has
no expected answers, is in ``replay_ledger.py``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from hybridgate.config import GatewayConfig
from hybridgate.evals.golden import GoldenSet
from hybridgate.evals.report import route_summary
from hybridgate.evals.runner import CaseResult, run_golden
from hybridgate.ledger.money import usd
from hybridgate.types import Json

DELTA_KEYS = ("pass_rate", "score", "cost_usd", "latency_p50_ms", "latency_p95_ms")


def _delta(before: Json, after: Json) -> Json:
    out: Json = {}
    for key in DELTA_KEYS:
        a, b = before.get(key), after.get(key)
        out[key] = None if a is None or b is None else round(float(b) - float(a), 8)
    return out


def _backends(results: Sequence[CaseResult]) -> dict[str, int]:
    return dict(Counter(r.backend or "(error)" for r in results))


def compare_runs(
    current: Sequence[CaseResult], candidate: Sequence[CaseResult], routes: Sequence[str]
) -> Json:
    """The replay report: per-route summaries of both sides, their difference, changed cases."""
    out: Json = {"mode": "golden", "routes": {}, "changed": []}
    for route in routes:
        mine = [r for r in current if r.route == route]
        theirs = [r for r in candidate if r.route == route]
        before, after = route_summary(mine), route_summary(theirs)
        for summary in (before, after):
            summary.pop("tags")
        out["routes"][route] = {
            "current": {**before, "backends": _backends(mine)},
            "candidate": {**after, "backends": _backends(theirs)},
            "delta": _delta(before, after),
        }
    theirs_by_key = {(r.route, r.case_id): r for r in candidate}
    for mine_result in current:
        other = theirs_by_key.get((mine_result.route, mine_result.case_id))
        if other is not None and other.verdict != mine_result.verdict:
            out["changed"].append(
                {
                    "route": mine_result.route,
                    "case_id": mine_result.case_id,
                    "current": mine_result.verdict,
                    "candidate": other.verdict,
                    "current_answer": mine_result.answer[:200],
                    "candidate_answer": other.answer[:200],
                    "candidate_reason": other.reason,
                }
            )
    return out


async def replay_golden(
    current: GatewayConfig,
    candidate: GatewayConfig,
    golden: GoldenSet,
    routes: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    concurrency: int = 4,
    judge_route: str | None = None,
) -> Json:
    """Run ``golden`` on ``routes`` under both configs and compare (judges run under each config)."""
    runs = []
    for config in (current, candidate):
        runs.append(
            await run_golden(
                config,
                golden,
                routes,
                env=env,
                concurrency=concurrency,
                judge_route=judge_route,
                feature="replay",
            )
        )
    report = compare_runs(runs[0], runs[1], routes)
    report["golden"] = str(golden.path)
    return report


def _signed(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, "+" + fmt)


def render_golden_replay(report: Json) -> str:
    lines = [f"replay of {report['golden']}: current config vs candidate policy", ""]
    for route, sides in report["routes"].items():
        lines.append(f"route '{route}'")
        for side in ("current", "candidate"):
            s = sides[side]
            lines.append(
                f"  {side:<9} pass {s['pass']:>3}  soft {s['soft']:>3}  fail {s['fail']:>3}  "
                f"pass rate {s['pass_rate']:.1%}  cost {usd(s['cost_usd'])}  "
                f"p50 {s['latency_p50_ms']} ms  backends {s['backends']}"
            )
        d = sides["delta"]
        lines.append(
            f"  delta     pass rate {_signed(d['pass_rate'], '.1%')}"
            f"  cost {_signed(d['cost_usd'], '.6f')} USD"
            f"  p50 {_signed(d['latency_p50_ms'], '.0f')} ms"
        )
    if report["changed"]:
        lines += ["", "cases whose verdict changed:"]
        for c in report["changed"]:
            change = f"{c['current']} -> {c['candidate']}"
            lines.append(f"  {c['route']} / {c['case_id']}: {change}  {c['candidate_reason']}")
    return "\n".join(lines)
