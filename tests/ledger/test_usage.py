"""render_usage: the text table and JSON the `hybridgate usage` command prints."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from hybridgate.cli import app
from hybridgate.ledger.records import LedgerRecord
from hybridgate.ledger.store import SqliteLedger
from hybridgate.ledger.usage import render_usage

ROWS: list[dict[str, Any]] = [
    {
        "feature": "summarize",
        "requests": 1200,
        "errors": 3,
        "prompt_tokens": 1_500_000,
        "completion_tokens": 90_000,
        "cost_usd": 12.3456,
        "latency_p50_ms": 812.4,
        "latency_p95_ms": 2400.0,
        "ttft_mean_ms": 180.0,
    },
    {
        "feature": None,
        "requests": 40,
        "errors": 0,
        "prompt_tokens": 800,
        "completion_tokens": 400,
        "cost_usd": 0.00042,
        "latency_p50_ms": 95.0,
        "latency_p95_ms": 140.0,
        "ttft_mean_ms": None,
    },
]


def test_table_shows_each_group_and_a_total() -> None:
    text = render_usage(ROWS, by="feature", as_json=False)
    assert "Usage by feature" in text
    lines = text.splitlines()
    summarize = next(line for line in lines if "summarize" in line)
    for cell in ("1,200", "1,500,000", "90,000", "12.35", "812", "2,400", "180"):
        assert cell in summarize
    untagged = next(line for line in lines if "(none)" in line)
    assert "0.0004" in untagged and " - " in untagged + " "
    total = next(line for line in lines if "total" in line)
    assert "1,240" in total and "1,500,800" in total and "12.35" in total
    assert "\x1b[" not in text  # plain text: safe to pipe or write to a file


def test_json_round_trips() -> None:
    assert json.loads(render_usage(ROWS, by="feature", as_json=True)) == ROWS


def test_empty_period_says_so() -> None:
    assert "No requests" in render_usage([], by="route", as_json=False)
    assert json.loads(render_usage([], by="route", as_json=True)) == []


def test_single_group_has_no_total_line() -> None:
    text = render_usage(ROWS[:1], by="feature", as_json=False)
    assert "total" not in text


def test_usage_command_reads_a_ledger_file_and_names_a_missing_one(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger = SqliteLedger(str(path))
    ledger.start()
    for i, route in enumerate(["local", "local", "frontier"]):
        ledger.record(LedgerRecord(ts=time.time(), request_id=f"r{i}", route=route, cost_usd=0.5))
    ledger.close()
    result = CliRunner().invoke(app, ["usage", "--ledger", str(path), "--json"])
    assert result.exit_code == 0, result.output
    by_route = {row["route"]: row["requests"] for row in json.loads(result.output)}
    assert by_route == {"local": 2, "frontier": 1}
    missing = CliRunner().invoke(app, ["usage", "--ledger", str(tmp_path / "typo.db")])
    assert missing.exit_code == 1 and "no ledger at" in missing.output


def _classed_ledger(path: Path) -> None:
    ledger = SqliteLedger(str(path))
    ledger.start()
    now = time.time()
    for i, (traffic, cost) in enumerate([("live", 1.0), ("live", 1.0), ("eval", 3.0), ("shadow", 2.0)]):
        ledger.record(
            LedgerRecord(
                ts=now, request_id=f"r{i}", route="r", cost_usd=cost, traffic=traffic, saved_usd=0.25
            )
        )
    ledger.close()


def test_usage_counts_live_traffic_and_shows_the_rest_as_overhead(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    _classed_ledger(path)
    live = json.loads(CliRunner().invoke(app, ["usage", "--ledger", str(path), "--json"]).output)
    assert [(r["requests"], r["cost_usd"]) for r in live] == [(2, 2.0)]
    every = CliRunner().invoke(app, ["usage", "--ledger", str(path), "--json", "--traffic", "all"])
    assert json.loads(every.output)[0]["requests"] == 4
    text = CliRunner().invoke(app, ["usage", "--ledger", str(path)]).output
    assert "(live traffic)" in text and "$2.00" in text
    assert "eval" in text and "shadow" in text
    assert "overhead $5.00 = 250% on top of live spend" in text
    assert "Cache saved $0.50" in text  # the two live rows' saved_usd


def test_bad_usage_options_are_clean_errors(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    _classed_ledger(path)
    for args in (["--by", "colour"], ["--traffic", "bots"]):
        result = CliRunner().invoke(app, ["usage", "--ledger", str(path), *args])
        assert result.exit_code == 2 and result.exception is not None
        assert isinstance(result.exception, SystemExit)  # typer.Exit, not a traceback
        assert "choose one of" in result.output
