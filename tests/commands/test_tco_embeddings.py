"""``hybridgate tco --from-ledger`` counts embeddings: measured tokens, price and cache hit rate,
in the normal table as well as in JSON, and keeps them out of the chat workload.

A real SQLite ledger holds the shared fixture's week of chat traffic plus embeddings rows written
as the gateway writes them (``api = "embeddings"``, ``texts``, ``cached_texts``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hybridgate.cli import app
from hybridgate.ledger.records import LedgerRecord
from hybridgate.ledger.store import SqliteLedger
from tests.tco.ledger_fixture import DAY, fill_ledger

runner = CliRunner()
EMBED_ROWS = 10  # each: 100 texts, 60 from the cache, 4,000 tokens sent at $0.02/Mtok


@pytest.fixture
def config(tmp_path: Path) -> Path:
    ledger = tmp_path / "ledger.db"
    now = time.time()
    traffic = fill_ledger(ledger, now)
    assert traffic.requests == 48
    store = SqliteLedger(str(ledger))
    store.start()
    for i in range(EMBED_ROWS):
        store.record(
            LedgerRecord(
                ts=now - 3 * DAY + i * 3600, request_id=f"e{i}", api="embeddings", environment="test",
                route="docs", backend="openai-embed", model="text-embedding-3-small", prompt_tokens=4000,
                cost_usd=4000 * 0.02 / 1e6, cache="partial", saved_usd=2.0e-5, texts=100, cached_texts=60,
            )
        )  # fmt: skip
    store.close()
    path = tmp_path / "hybridgate.toml"
    path.write_text(f'[ledger]\npath = "{ledger}"\n' + BACKENDS)
    return path


BACKENDS = (
    '[backends.local]\ntype = "embedded"\n'
    '[backends.cloud]\ntype = "openai_compat"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "gpt-4o-mini"\n'
    "price = { input_per_mtok = 5.0, output_per_mtok = 15.0 }\n"
    '[routes.auto]\ntry = ["local", "cloud"]\n'
)


def test_embeddings_are_measured_and_kept_out_of_the_chat_workload(config: Path) -> None:
    result = runner.invoke(app, ["tco", "--from-ledger", "-c", str(config), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    measured = report["embeddings"]["measured"]
    days = report["measured"]["days"]
    assert measured["hit_rate"] == pytest.approx(0.6)
    assert measured["daily_tokens"] == pytest.approx(EMBED_ROWS * 4000 / days, rel=1e-3)
    assert measured["usd_per_mtok"] == pytest.approx(0.02)
    assert report["embeddings"]["daily_tokens"] == pytest.approx(measured["daily_tokens"], rel=1e-3)
    assert report["assumptions"]["sources"]["embed_daily_tokens"] == "ledger"
    # The chat workload is the fixture's 48 requests; the embeddings rows are not chat demand.
    assert report["measured"]["requests"] == 48
    assert report["embeddings"]["api_monthly_usd"] == pytest.approx(
        measured["daily_tokens"] * 30 * 0.02 / 1e6, abs=0.01
    )


def test_the_table_says_the_embeddings_line(config: Path) -> None:
    result = runner.invoke(app, ["tco", "--from-ledger", "-c", str(config)])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stdout.splitlines() if line.startswith("embeddings:"))
    assert "(ledger)" in line and "60% of" in line and "came from the cache" in line


def test_usage_by_api_shows_embeddings_beside_chat(config: Path) -> None:
    result = runner.invoke(app, ["usage", "--by", "api", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert "embeddings" in result.stdout and "texts embedded" in result.stdout and "60%" in result.stdout
    rows = json.loads(runner.invoke(app, ["usage", "--by", "api", "-c", str(config), "--json"]).stdout)
    by_api = {row["api"]: row for row in rows}
    assert by_api["embeddings"]["texts"] == 1000 and by_api["embeddings"]["cached_texts"] == 600
    assert by_api["openai"]["requests"] == 48
