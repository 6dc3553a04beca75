"""Drift checks: comparing a run with a baseline, and the exit code of ``hybridgate eval --baseline``.

The command tests run the real CLI code against a stand-in OpenAI upstream
(tests/standins/openai_upstream.py, not OpenAI) scripted to answer worse on the second run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hybridgate.errors import ConfigError
from hybridgate.evals.drift import compare, load_report
from tests.evals.commands import cli, config_toml
from tests.evals.conftest import write
from tests.standins.openai_upstream import OpenAIStandIn, Reply


def report(
    rates: dict[str, float], verdicts: dict[tuple[str, str], str], cost: float = 0.0
) -> dict[str, Any]:
    routes = {r: {"pass_rate": rate, "cost_usd": cost, "latency_p50_ms": 100.0} for r, rate in rates.items()}
    cases = [{"route": r, "case_id": c, "verdict": v, "reason": f"why {c}"} for (r, c), v in verdicts.items()]
    return {"routes": routes, "cases": cases}


def test_no_change_is_no_drift() -> None:
    same = report({"local": 0.5}, {("local", "a"): "pass", ("local", "b"): "fail"})
    drift = compare(same, same)
    assert not drift.failed and drift.render() == "drift: no change from the baseline"


def test_a_pass_to_fail_flip_is_a_regression_even_within_the_margin() -> None:
    base = report({"local": 0.5}, {("local", "a"): "pass", ("local", "b"): "fail"})
    now = report({"local": 0.5}, {("local", "a"): "fail", ("local", "b"): "pass"})
    drift = compare(now, base, margin=0.5)
    assert drift.regressions == ["route 'local', case 'a': pass -> fail: why a"]
    assert "route 'local', case 'b': fail -> pass" in drift.notes


@pytest.mark.parametrize(("after", "regressed"), [(0.90, False), (0.85, False), (0.84, True)])
def test_pass_rate_margin(after: float, regressed: bool) -> None:
    drift = compare(report({"r": after}, {}), report({"r": 0.90}, {}), margin=0.05)
    assert drift.failed is regressed
    if regressed:
        assert drift.regressions == [
            "route 'r': pass rate 90.0% -> 84.0% (dropped more than the 5.0% margin)"
        ]


def test_notes_for_soft_cost_latency_and_membership() -> None:
    base = report({"a": 1.0, "gone": 1.0}, {("a", "x"): "pass", ("a", "old"): "pass"}, cost=0.1)
    now = report({"a": 1.0, "new": 1.0}, {("a", "x"): "soft", ("a", "fresh"): "pass"}, cost=0.2)
    now["routes"]["a"]["latency_p50_ms"] = 300.0
    drift = compare(now, base)
    assert not drift.failed
    assert drift.notes == [
        "route 'a': cost 0.1 -> 0.2 USD",
        "route 'a': latency p50 100.0 -> 300.0 ms",
        "route 'gone' is in the baseline but was not run",
        "route 'new' is new (no baseline)",
        "route 'a', case 'x': pass -> soft",
        "route 'a', case 'old' is gone from the golden set",
        "route 'a', case 'fresh' is new (no baseline)",
    ]


def test_load_report_rejects_what_is_not_a_report(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_report(tmp_path / "nope.json")
    with pytest.raises(ConfigError, match="not JSON"):
        load_report(write(tmp_path / "a.json", "{"))
    with pytest.raises(ConfigError, match="not an eval report"):
        load_report(write(tmp_path / "b.json", '{"rows": []}'))


GOLDEN = """
[[cases]]
id = "capital"
prompt = "Capital of France?"
expect = { grader = "contains", value = "Paris" }
[[cases]]
id = "sum"
prompt = "12 + 30?"
expect = { grader = "numeric", value = 42 }
"""


def test_eval_exits_non_zero_on_drift(
    standin: OpenAIStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDIN_KEY", "sk-standin")
    config = write(tmp_path / "gw.toml", config_toml(standin.base_url, tmp_path / "ledger.db"))
    golden = write(tmp_path / "golden.toml", GOLDEN)
    args = ["eval", str(golden), "--routes", "cloud", "--config", str(config), "--concurrency", "1"]
    runner = CliRunner()

    standin.script(Reply(content="Paris"), Reply(content="42"))
    first = runner.invoke(cli(), [*args, "--out", str(tmp_path / "base")])
    assert first.exit_code == 0, first.output
    baseline = tmp_path / "base" / "report.json"

    standin.script(Reply(content="Paris"), Reply(content="42"))
    same = runner.invoke(cli(), [*args, "--out", str(tmp_path / "same"), "--baseline", str(baseline)])
    assert same.exit_code == 0, same.output
    assert "drift: no change from the baseline" in same.stdout

    standin.script(Reply(content="Paris"), Reply(content="41"))
    worse = runner.invoke(
        cli(), [*args, "--out", str(tmp_path / "worse"), "--baseline", str(baseline), "--json"]
    )
    assert worse.exit_code == 1, worse.output
    assert "REGRESSION route 'cloud': pass rate 100.0% -> 50.0%" in worse.stderr
    assert "REGRESSION route 'cloud', case 'sum': pass -> fail: expected 42 ± 0, got 41" in worse.stderr
    printed = json.loads(worse.stdout)
    assert printed["drift"]["baseline"] == str(baseline) and len(printed["drift"]["regressions"]) == 2

    bad = runner.invoke(cli(), [*args, "--baseline", str(tmp_path / "missing.json")])
    assert bad.exit_code == 2 and "baseline" in bad.stderr and "not found" in bad.stderr


def test_a_changed_upstream_model_is_named_at_the_top_of_the_drift_report() -> None:
    base = report({"cloud": 1.0}, {("cloud", "a"): "pass", ("cloud", "b"): "pass"})
    now = report({"cloud": 0.0}, {("cloud", "a"): "fail", ("cloud", "b"): "fail"})
    for run, model in ((base, "gpt-4o-2024-08-06"), (now, "gpt-4o-2024-11-20")):
        for case in run["cases"]:
            case |= {"backend": "openai", "model": model}
    drift = compare(now, base)
    assert drift.model_changes == ["route 'cloud', backend 'openai': gpt-4o-2024-08-06 -> gpt-4o-2024-11-20"]
    first = drift.render().splitlines()[0]
    assert (
        first
        == "UPSTREAM MODEL CHANGED: route 'cloud', backend 'openai': gpt-4o-2024-08-06 -> gpt-4o-2024-11-20"
    )
    assert compare(base, base).model_changes == []
