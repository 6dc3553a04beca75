"""Drift: compare an eval run with a stored baseline report and say what got worse.

Offline tooling (``hybridgate eval --baseline report.json``); pure functions plus one file read.
A run has drifted when a route's pass rate fell by more than the margin, or when any case that
passed in the baseline now fails. Both are regressions and make the command exit non-zero, so a
CI job or a cron entry can alert on it. Other differences (improvements, pass -> soft, cost and
latency moves, cases added or removed) are listed but do not fail the check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from hybridgate.errors import ConfigError
from hybridgate.types import Json

EPSILON = 1e-9  # so a drop of exactly the margin is not a regression by float noise


@dataclass
class Drift:
    regressions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # The upstream model behind a route changed between the runs: named first, since it explains
    # regressions that no config change made.
    model_changes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.regressions)

    def render(self) -> str:
        if not self.regressions and not self.notes and not self.model_changes:
            return "drift: no change from the baseline"
        lines = [f"UPSTREAM MODEL CHANGED: {line}" for line in self.model_changes]
        if self.model_changes:
            lines.append("  (regressions below may come from the new upstream model, not from your config)")
        lines += [f"drift: {len(self.regressions)} regression(s)"]
        lines += [f"  REGRESSION {line}" for line in self.regressions]
        lines += [f"  note       {line}" for line in self.notes]
        return "\n".join(lines)


def load_report(path: str | Path) -> Json:
    """Read a stored JSON report; a missing or foreign file is a ``ConfigError``."""
    file = Path(path)
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"baseline {file} not found; write one with `hybridgate eval --out DIR`") from exc
    except ValueError as exc:
        raise ConfigError(f"baseline {file} is not JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("routes"), dict) or "cases" not in data:
        raise ConfigError(f"baseline {file} is not an eval report (no 'routes' and 'cases')")
    return data


def compare(current: Json, baseline: Json, margin: float = 0.05) -> Drift:
    drift = Drift()
    for route, base in baseline["routes"].items():
        now = current["routes"].get(route)
        if now is None:
            drift.notes.append(f"route '{route}' is in the baseline but was not run")
            continue
        _compare_route(drift, route, now, base, margin)
    for route in current["routes"].keys() - baseline["routes"].keys():
        drift.notes.append(f"route '{route}' is new (no baseline)")
    _compare_cases(drift, current, baseline)
    drift.model_changes = _model_changes(current, baseline)
    return drift


def _models(report: Json) -> dict[tuple[str, str], set[str]]:
    """(route, backend) -> the models the upstream reported answering as, over the run's cases."""
    found: dict[tuple[str, str], set[str]] = {}
    for case in report["cases"]:
        if case.get("model") and case.get("backend") and not case.get("error"):
            found.setdefault((case["route"], case["backend"]), set()).add(str(case["model"]))
    return found


def _model_changes(current: Json, baseline: Json) -> list[str]:
    now, before = _models(current), _models(baseline)
    lines = []
    for key in sorted(now.keys() & before.keys()):
        if now[key] != before[key]:
            route, backend = key
            lines.append(
                f"route '{route}', backend '{backend}': {', '.join(sorted(before[key]))} -> "
                f"{', '.join(sorted(now[key]))}"
            )
    return lines


def _compare_route(drift: Drift, route: str, now: Json, base: Json, margin: float) -> None:
    before, after = float(base["pass_rate"]), float(now["pass_rate"])
    line = f"route '{route}': pass rate {before:.1%} -> {after:.1%}"
    if before - after > margin + EPSILON:
        drift.regressions.append(f"{line} (dropped more than the {margin:.1%} margin)")
    elif after != before:
        drift.notes.append(line)
    if now.get("cost_usd") != base.get("cost_usd"):
        drift.notes.append(f"route '{route}': cost {base.get('cost_usd')} -> {now.get('cost_usd')} USD")
    p50_before, p50_after = base.get("latency_p50_ms"), now.get("latency_p50_ms")
    # Latency is noisy: only a move of 20% and at least 100 ms is worth a line.
    if p50_before and p50_after and abs(p50_after - p50_before) > max(0.2 * p50_before, 100.0):
        drift.notes.append(f"route '{route}': latency p50 {p50_before} -> {p50_after} ms")


def _by_key(report: Json) -> dict[tuple[str, str], Json]:
    return {(c["route"], c["case_id"]): c for c in report["cases"]}


def _compare_cases(drift: Drift, current: Json, baseline: Json) -> None:
    now, base = _by_key(current), _by_key(baseline)
    compared_routes = current["routes"].keys() & baseline["routes"].keys()
    for key in sorted(base.keys() & now.keys()):
        before, after = base[key]["verdict"], now[key]["verdict"]
        if before == after:
            continue
        route, case_id = key
        line = f"route '{route}', case '{case_id}': {before} -> {after}"
        if before == "pass" and after == "fail":
            reason = now[key].get("reason") or ""
            drift.regressions.append(f"{line}: {reason}"[:300])
        else:
            drift.notes.append(line)
    for route, case_id in sorted(base.keys() - now.keys()):
        if route in compared_routes:
            drift.notes.append(f"route '{route}', case '{case_id}' is gone from the golden set")
    for route, case_id in sorted(now.keys() - base.keys()):
        if route in compared_routes:
            drift.notes.append(f"route '{route}', case '{case_id}' is new (no baseline)")
