"""``hybridgate tco`` and ``hybridgate decide`` through typer's CliRunner, on real ledger files.

The commands are mounted on a local Typer app exactly as cli.py registers them.
"""

from __future__ import annotations

import csv
import json
import time
import tomllib
import xml.etree.ElementTree as ET
from io import StringIO
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from hybridgate.commands.decide import decide_command
from hybridgate.commands.tco import tco_command
from hybridgate.config import GatewayConfig
from hybridgate.ledger.pricing import Pricer
from hybridgate.ledger.records import LedgerRecord
from hybridgate.ledger.store import SqliteLedger
from hybridgate.types import Usage
from tests.tco.ledger_fixture import fill_ledger

app = typer.Typer()
app.command("tco")(tco_command)
app.command("decide")(decide_command)
runner = CliRunner()
ACCEPTANCE = [
    "tco",
    "--daily-tokens",
    "500k,5M,20M,50M,200M",
    "--blended-price",
    "8",
    "--selfhost-monthly",
    "8000",
]


def config_file(tmp_path: Path, ledger: Path) -> Path:
    path = tmp_path / "hybridgate.toml"
    path.write_text(
        f'[ledger]\npath = "{ledger}"\n\n[backends.local]\ntype = "embedded"\n\n'
        '[backends.cloud]\ntype = "openai_compat"\nmodel = "gpt-4o-mini"\n\n'
        '[routes.auto]\ntry = ["local", "cloud"]\n'
    )
    return path


def test_acceptance_planning_table_as_json() -> None:
    result = runner.invoke(app, [*ACCEPTANCE, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = {r["daily_tokens"]: r for r in report["rows"]}
    assert rows[500_000]["api_monthly_usd"] == 120.0
    assert rows[5_000_000]["api_monthly_usd"] == 1200.0
    assert rows[20_000_000]["api_monthly_usd"] == 4800.0
    assert rows[50_000_000]["api_monthly_usd"] == 12000.0
    assert rows[200_000_000]["api_monthly_usd"] == 48000.0
    assert all(r["selfhost_monthly_usd"] == 8000.0 and "hybrid_monthly_usd" in r for r in report["rows"])
    assert report["break_even_daily_tokens"] == pytest.approx(8000 / (8e-6 * 30), abs=0.01)
    assert report["assumptions"]["sources"]["local_share"].startswith("assumed")


def test_csv_and_chart(tmp_path: Path) -> None:
    chart = tmp_path / "tco.svg"
    result = runner.invoke(app, [*ACCEPTANCE, "--csv", "--chart", str(chart)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(StringIO(result.stdout)))
    assert [r["api_monthly_usd"] for r in rows] == ["120.0", "1200.0", "4800.0", "12000.0", "48000.0"]
    assert ET.parse(chart).getroot().find("{http://www.w3.org/2000/svg}line[@id='break-even']") is not None


def test_table_with_a_gpu_profile_and_people_cost() -> None:
    args = [
        "tco",
        "--daily-tokens",
        "5M,50M",
        "--blended-price",
        "8",
        "--profile",
        "a100",
        "--people-fte",
        "0.5",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "1x A100 80GB" in result.stdout and "break-even:" in result.stdout
    assert "10,133.33" in result.stdout  # one node at $1,800 + half of a $200k FTE a month


def test_model_price_from_genai_prices() -> None:
    args = ["tco", "--daily-tokens", "1M", "--model", "gpt-4o-mini", "--provider", "openai",
            "--input-share", "0.5", "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    per_in = Pricer().price("openai", "gpt-4o-mini", Usage(prompt_tokens=1_000_000), None)
    per_out = Pricer().price("openai", "gpt-4o-mini", Usage(completion_tokens=1_000_000), None)
    assert per_in > 0 and per_out > per_in
    expected = (per_in + per_out) / 2 * 30
    assert json.loads(result.stdout)["rows"][0]["api_monthly_usd"] == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--daily-tokens", "-5M", "--blended-price", "8"], "must not be negative"),
        (["--daily-tokens", "5M", "--blended-price", "8", "--profile", "v100"], "unknown GPU profile 'v100'"),
        (["--daily-tokens", "5M", "--blended-price", "8", "--utilisation", "0"], "utilisation"),
        (["--daily-tokens", "5M", "--blended-price", "8", "--local-share", "2"], "local share"),
        (["--blended-price", "8"], "--daily-tokens"),
        (["--daily-tokens", "5M"], "no API price"),
        (["--daily-tokens", "5M", "--model", "no-such-model-xyz"], "no price for model"),
    ],
)
def test_invalid_input_is_a_clear_error(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["tco", *args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_from_ledger_measures_volume_price_and_split(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    traffic = fill_ledger(ledger)
    config = config_file(tmp_path, ledger)
    result = runner.invoke(app, ["tco", "--from-ledger", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    measured = report["measured"]
    assert measured["requests"] == traffic.requests
    assert report["rows"][0]["daily_tokens"] == pytest.approx(measured["daily_tokens"])
    assert report["rows"][0]["measured"] is True
    assert report["assumptions"]["api_usd_per_mtok"] == 7.5
    assert report["assumptions"]["local_share"] == pytest.approx(traffic.local_tokens / 33_600, abs=1e-4)
    assert report["assumptions"]["sources"]["local_share"] == "ledger"
    # The ledger's local backend ran on the gateway's machine: reported, never priced as the GPU's.
    assert (
        report["local_tier"]["throughput_tps"] == 800
        and report["local_tier"]["throughput_source"] == "profile"
    )
    assert report["local_tier"]["gateway_measured_tps"] == 200.0
    table = runner.invoke(app, ["tco", "--daily-tokens", "5M", "--from-ledger", "--config", str(config)])
    assert table.exit_code == 0, table.output
    assert "5M " in table.stdout and "(ledger)" in table.stdout and "measured: 48 requests" in table.stdout


def test_from_ledger_with_no_data(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    SqliteLedger(str(ledger)).start()
    result = runner.invoke(app, ["tco", "--from-ledger", "--ledger", str(ledger), "--blended-price", "8"])
    assert result.exit_code == 1
    assert "no data" in result.stderr and result.stdout == ""
    missing = runner.invoke(app, ["tco", "--from-ledger", "--ledger", str(tmp_path / "nope.db")])
    assert missing.exit_code == 2 and "no ledger at" in missing.stderr


ANSWERS = """
[data]
can_leave_network = true

[quality]
open_weights_meet_bar = true

[volume]
daily_tokens = "100M"
shape = "bursty"

[ops]
gpu_oncall = true
version_pinning = true
"""


def test_decide_from_an_answers_file_as_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no eval-report/ and no ledger here
    (tmp_path / "answers.toml").write_text(ANSWERS)
    written = tmp_path / "starter.toml"
    args = ["decide", "--answers", "answers.toml", "--json", "--write-config", str(written)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["recommendation"] == "hybrid" and body["reasons"]
    assert body["inputs"] == {"eval_report": None, "ledger_requests": 0}
    GatewayConfig.model_validate(tomllib.loads(written.read_text()))


def test_decide_reads_the_default_eval_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "answers.toml").write_text(ANSWERS)
    (tmp_path / "eval-report").mkdir()
    (tmp_path / "eval-report" / "report.json").write_text(
        json.dumps({"routes": {"local": {"pass": 1, "fail": 9}}})
    )
    result = runner.invoke(app, ["decide", "--answers", "answers.toml"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Recommendation: Closed API (stopped at step 2, a hard constraint)")
    assert "[[rules]]" not in result.stdout and '[routes.auto]\ntry = ["openai", "claude"]' in result.stdout


def test_decide_reads_volume_from_the_ledger(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    fill_ledger(ledger)
    answers = tmp_path / "answers.toml"
    answers.write_text("[data]\ncan_leave_network = true\n")
    args = [
        "decide",
        "--answers",
        str(answers),
        "--ledger",
        str(ledger),
        "--eval-report",
        str(tmp_path / "x.json"),
    ]
    assert "eval report" in runner.invoke(app, args).stderr  # an explicit report path must exist
    result = runner.invoke(app, ["decide", "--answers", str(answers), "--ledger", str(ledger), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["numbers"]["daily_tokens_source"] == "ledger"
    assert body["recommendation"] == "closed_api"  # about 10k tokens a day
    assert body["inputs"]["ledger_requests"] == 48


def test_decide_needs_answers_when_not_interactive(tmp_path: Path) -> None:
    result = runner.invoke(app, ["decide", "--no-interactive"])
    assert result.exit_code == 2 and "--answers" in result.stderr


def test_decide_asks_the_questions_interactively(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    replies = ["n", "maybe", "none", "0.9", "yes", "5M", "steady", "", "y", "y", "none"]  # "": no RAG corpus
    result = runner.invoke(app, ["decide", "--interactive"], input="\n".join(replies) + "\n")
    assert result.exit_code == 0, result.output
    assert "please answer one of: none, episodic, systemic" in result.stdout
    assert "Recommendation: Self-host (stopped at step 1" in result.stdout


def test_decide_asks_about_the_rag_corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    replies = ["y", "none", "0.9", "yes", "5M", "steady", "8M", "2", "y", "y", "none"]
    result = runner.invoke(app, ["decide", "--interactive", "--json"], input="\n".join(replies) + "\n")
    assert result.exit_code == 0, result.output
    numbers = json.loads(result.stdout[result.stdout.index("{") :])["numbers"]
    assert numbers["corpus_chunks"] == 8_000_000 and numbers["reembeds_per_month"] == 2


def test_a_cpu_model_speed_is_never_priced_as_the_profile_gpu(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    fill_ledger(ledger)  # local requests at 200 tokens/s on this machine
    config = config_file(tmp_path, ledger)
    args = ["tco", "--from-ledger", "--config", str(config), "--profile", "a100"]
    report = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    tier = report["local_tier"]
    # $2.50/h at 2,500 tokens/s and 50% load is $0.56/Mtok; at the ledger's 200 tokens/s it was $6.94
    assert tier["usd_per_mtok"] == pytest.approx(2.5 / (2500 * 3600 * 0.5) * 1e6, abs=1e-4)
    given = json.loads(runner.invoke(app, [*args, "--json", "--throughput-tps", "1000"]).stdout)
    assert given["local_tier"]["throughput_source"] == "given (--throughput-tps)"
    assert given["local_tier"]["usd_per_mtok"] == pytest.approx(2.5 / (1000 * 3600 * 0.5) * 1e6, abs=1e-4)
    text = runner.invoke(app, args).stdout
    assert "not used to price the profile's hardware" in text
    for line in ("people: $4,166.67/month", "overhead: +", "utilisation", "hybrid vs all-cloud at"):
        assert line in text, line


def test_overhead_is_measured_from_the_ledger_traffic_classes(tmp_path: Path) -> None:
    ledger_path = tmp_path / "ledger.db"
    fill_ledger(ledger_path)
    ledger = SqliteLedger(str(ledger_path))
    ledger.start()
    live = sum(r["prompt_tokens"] + r["completion_tokens"] for r in ledger.usage("route"))
    ledger.record(LedgerRecord(ts=time.time(), request_id="e", backend="cloud", prompt_tokens=live // 4,
                               traffic="eval", cost_usd=1.0))  # fmt: skip
    ledger.record(LedgerRecord(ts=time.time(), request_id="s", backend="cloud", saved_usd=0.3, cache="hit"))
    ledger.close()
    config = config_file(tmp_path, ledger_path)
    report = json.loads(runner.invoke(app, ["tco", "--from-ledger", "-c", str(config), "--json"]).stdout)
    assert report["assumptions"]["overhead"] == pytest.approx(0.25, abs=0.01)
    assert report["assumptions"]["sources"]["overhead"].startswith("ledger: eval ")
    assert report["measured"]["requests"] == 49  # the eval row is overhead, not demand
    assert report["savings"]["cache_saved_monthly_usd"] > 0
    given = json.loads(runner.invoke(app, ["tco", "--from-ledger", "-c", str(config), "--json",
                                           "--overhead", "0"]).stdout)  # fmt: skip
    assert given["assumptions"]["overhead"] == 0 and given["assumptions"]["sources"]["overhead"] == "given"


def test_usage_shows_savings_versus_all_cloud(tmp_path: Path) -> None:
    from hybridgate.cli import app as cli_app

    ledger = tmp_path / "ledger.db"
    traffic = fill_ledger(ledger)
    config = config_file(tmp_path, ledger)
    text = CliRunner().invoke(cli_app, ["usage", "-c", str(config)]).stdout
    # The fixture's cloud tier costs $7.50/Mtok; its local tier served this many tokens.
    saved = traffic.local_tokens * 7.5 / 1e6
    assert f"Versus all-cloud: the local tiers served {traffic.local_tokens:,} tokens" in text
    assert f"measured $7.50/Mtok would have cost ${saved:.2f}" in text
