"""``hybridgate replay --from-ledger`` on a PostgreSQL ledger gives the report it gives on SQLite.

The gateway logs two prompts (``log_prompts = true``) through its own ledger, SQLite or a database
on a throwaway PostgreSQL server (Debian's, on loopback); the replay reads them back from that
store. Upstream: the stand-in OpenAI server (tests/standins/openai_upstream.py, not OpenAI), which
echoes the prompt, so both runs answer alike; only measured latencies differ.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.evals.commands import config_toml
from tests.evals.conftest import write
from tests.evals.test_commands import invoke, log_traffic
from tests.ledger.stores import STORES
from tests.postgres_server import PostgresServer, new_database
from tests.standins.openai_upstream import OpenAIStandIn

PROMPTS = ["first question", "second question"]


def configs(store: str, base_url: str, tmp_path: Path, dsn: str) -> tuple[Path, Path]:
    """The current config (logs prompts) and the candidate policy, both on ``store``'s ledger."""

    def on_store(toml: str) -> str:
        if store == "sqlite":
            return toml
        shared = f'[ledger]\nstore = "postgres"\nspool_path = "{tmp_path / "spool.jsonl"}"\n'
        return toml.replace("[ledger]\n", shared, 1) + f'\n[postgres]\ndsn = "{dsn}"\n'

    tmp_path.mkdir()
    ledger = tmp_path / "ledger.db"
    logging = config_toml(base_url, ledger, log_prompts=True, privacy="allow")
    current = write(tmp_path / "gw.toml", on_store(logging))
    candidate = write(tmp_path / "cand.toml", on_store(config_toml(base_url, ledger, auto='["cloud"]')))
    return current, candidate


def replay(current: Path, candidate: Path) -> tuple[int, str, str]:
    return invoke("replay", "--from-ledger", "--policy", str(candidate), "-c", str(current), "--json")


def without_latency(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_latency(v) for k, v in value.items() if "latency" not in k}
    return value


def test_replay_from_a_postgres_ledger_matches_sqlite(
    standin: OpenAIStandIn, postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDIN_KEY", "sk-standin")
    reports = {}
    for store in STORES:
        current, candidate = configs(store, standin.base_url, tmp_path / store, new_database(postgres_server))
        code, _, stderr = replay(current, candidate)  # nothing logged yet
        expected = "no ledger at" if store == "sqlite" else "no logged prompts to replay"
        assert code == 2 and expected in stderr, (store, stderr)
        asyncio.run(log_traffic(current, PROMPTS))
        code, stdout, stderr = replay(current, candidate)
        assert code == 0, stderr
        reports[store] = json.loads(stdout)
    pg = reports["postgres"]
    assert pg["prompts"] == 2 and pg["graded"] is False
    assert pg["current"]["backends"] == {"cheap": 2} and pg["candidate"]["backends"] == {"cloud": 2}
    assert pg["agreement"] == {"compared": 2, "exact": 1.0, "mean_overlap": 1.0}
    assert pg["recorded"]["cost_usd"] > 0 and pg["recorded"]["latency_p50_ms"] is not None
    assert without_latency(pg) == without_latency(reports["sqlite"])
