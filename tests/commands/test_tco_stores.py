"""``hybridgate tco --from-ledger`` and ``hybridgate decide`` on a PostgreSQL ledger, as on SQLite.

Typer's CliRunner on the commands as cli.py registers them; the ledgers are real: a SQLite file
written through ``SqliteLedger``, and a database on a throwaway PostgreSQL server (Debian's, on
loopback) written through ``PostgresLedger``, both holding the same known week of traffic.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from hybridgate.commands.decide import decide_command
from hybridgate.commands.tco import tco_command
from hybridgate.ledger.postgres import PostgresLedger
from hybridgate.ledger.store import SqliteLedger
from tests.gateway_process import free_port
from tests.ledger.stores import approx_equal
from tests.postgres_server import PostgresServer, new_database
from tests.tco.ledger_fixture import fill_store

app = typer.Typer()
app.command("tco")(tco_command)
app.command("decide")(decide_command)
runner = CliRunner()
BACKENDS = (
    '[backends.local]\ntype = "embedded"\n\n'
    '[backends.cloud]\ntype = "openai_compat"\nmodel = "gpt-4o-mini"\n\n'
    '[routes.auto]\ntry = ["local", "cloud"]\n'
)


def sqlite_config(tmp_path: Path, ledger: Path) -> Path:
    path = tmp_path / "sqlite.toml"
    path.write_text(f'[ledger]\npath = "{ledger}"\n\n{BACKENDS}')
    return path


def postgres_config(tmp_path: Path, dsn: str) -> Path:
    path = tmp_path / "postgres.toml"
    path.write_text(
        f'[ledger]\nstore = "postgres"\nspool_path = "{tmp_path / "spool.jsonl"}"\n\n'
        f'[postgres]\ndsn = "{dsn}"\n\n{BACKENDS}'
    )
    return path


@pytest.fixture
def configs(
    postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Path]:
    """One config file per store, the same rows in each; run where there is no eval report."""
    monkeypatch.chdir(tmp_path)
    now, dsn = time.time(), new_database(postgres_server)
    fill_store(SqliteLedger(str(tmp_path / "ledger.db")), now)
    fill_store(PostgresLedger(dsn, spool_path=str(tmp_path / "fill-spool.jsonl")), now)
    return {
        "sqlite": sqlite_config(tmp_path, tmp_path / "ledger.db"),
        "postgres": postgres_config(tmp_path, dsn),
    }


def run(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_tco_from_ledger_reports_the_same_on_both_stores(configs: dict[str, Path]) -> None:
    lite, pg = (
        run("tco", "--from-ledger", "--daily-tokens", "5M", "-c", str(configs[s]), "--json") for s in configs
    )
    assert pg["measured"]["requests"] == 48
    assert pg["assumptions"]["sources"] == {
        "price": "ledger (cloud spend / cloud tokens)",
        "local_share": "ledger",
        "embed_daily_tokens": "none given",  # the fixture's week has no embeddings requests
        "embed_price": "assumed (text-embedding-3-small)",
        "overhead": "ledger: escalations wasted 0 tokens",  # the week is all live traffic
        "people": "0.25 FTE at $200,000/year",
        "throughput": "profile",
    }
    assert pg["break_even_daily_tokens"] == lite["break_even_daily_tokens"]
    # Each run measures up to its own clock, so daily rates differ in the last digits.
    assert approx_equal(pg, lite, rel=1e-4), (pg, lite)
    window = run(
        "tco",
        "--from-ledger",
        "--days",
        "0.5",
        "--blended-price",
        "8",
        "-c",
        str(configs["postgres"]),
        "--json",
    )
    assert window["measured"]["requests"] == 12  # the newest day's six slots


def test_decide_reads_the_postgres_ledger_like_the_sqlite_one(
    configs: dict[str, Path], tmp_path: Path
) -> None:
    answers = tmp_path / "answers.toml"
    answers.write_text("[data]\ncan_leave_network = true\n")
    lite, pg = (run("decide", "--answers", str(answers), "-c", str(configs[s]), "--json") for s in configs)
    assert pg["inputs"]["ledger_requests"] == 48
    assert pg["numbers"]["daily_tokens_source"] == "ledger"
    assert approx_equal(pg, lite, rel=1e-4), (pg, lite)


def test_a_postgres_ledger_without_rows_is_no_data(postgres_server: PostgresServer, tmp_path: Path) -> None:
    config = postgres_config(tmp_path, new_database(postgres_server))  # no gateway has created the table
    result = runner.invoke(app, ["tco", "--from-ledger", "--blended-price", "8", "-c", str(config)])
    assert result.exit_code == 1 and "no data: the ledger has no requests" in result.stderr
    answers = tmp_path / "answers.toml"
    answers.write_text("[data]\ncan_leave_network = true\n")
    result = runner.invoke(app, ["decide", "--answers", str(answers), "-c", str(config)])
    assert result.exit_code == 2 and "no volume: answer volume.daily_tokens, or use a ledger" in result.stderr
    answers.write_text('[data]\ncan_leave_network = true\n[volume]\ndaily_tokens = "5M"\n')
    body = run("decide", "--answers", str(answers), "-c", str(config), "--json")
    assert body["inputs"]["ledger_requests"] == 0 and body["numbers"]["daily_tokens_source"] == "answers"


def test_an_unreachable_postgres_ledger_is_an_error_not_no_data(tmp_path: Path) -> None:
    config = postgres_config(tmp_path, f"postgresql://postgres@127.0.0.1:{free_port()}/hybridgate")
    result = runner.invoke(app, ["tco", "--from-ledger", "--blended-price", "8", "-c", str(config)])
    assert result.exit_code == 1 and "cannot read PostgreSQL at 127.0.0.1" in result.stderr
