"""``hybridgate router retrain``: a candidate trained on production outcomes is promoted only when it
is clearly better on held-out rows, and a running gateway then serves it (hot reload).

Stand-ins: ``cheap`` and ``strong`` are OpenAI-compatible stand-in servers on loopback, not real
providers; ``strong`` judges (GOOD for every cheap answer). The outcomes are synthetic
(tests/router/synthetic.py: arithmetic word problems fail on the cheap tier, chit-chat does not),
written into the gateway's SQLite ledger the way outcome sampling writes them: the router's
features, no prompt text. The CLI, the gateway, WordLlama and the openai SDK are real.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from hybridgate.app import create_app
from hybridgate.config import load_config
from hybridgate.embedder import WordLlamaEmbedder
from hybridgate.ledger.outcomes import Outcome, SqliteOutcomes
from hybridgate.router.features import FeatureSpec, Featurizer
from hybridgate.router.stored_features import decode_many, encode
from hybridgate.training.calibration import Target
from hybridgate.training.dataset import load_outcomes
from hybridgate.training.retrain import held_out
from hybridgate.training.train import TrainingOptions, train_router
from tests.router.synthetic import rows, write_csv
from tests.servers import serve_in_thread
from tests.standins.openai_upstream import run_openai_standin
from tests.standins.openai_wire import Reply

REPO = Path(__file__).resolve().parents[2]
SPEC = FeatureSpec(token_buckets=1 << 16)


@pytest.fixture(scope="module")
def embedder() -> WordLlamaEmbedder:
    return WordLlamaEmbedder()


def train_serving(folder: Path, embedder: WordLlamaEmbedder, *, inverted: bool) -> Path:
    """The serving router: trained on the true pattern, or on inverted labels (a poor router)."""
    data = rows(160, seed=5)
    if inverted:
        for row in data:
            row["small"], row["big"] = row["kind"] == "hard", True
    csv = write_csv(folder / "serving.csv", data)
    options = TrainingOptions(target=Target("quality", 0.95), bootstrap=20, folds=2)
    path = folder / "router.json"
    train_router(load_outcomes(csv), Featurizer(SPEC, embedder), options, {"file": "serving.csv"}).save(path)
    return path


def write_outcomes(ledger: Path, embedder: WordLlamaEmbedder, n: int = 300) -> None:
    """Judged outcomes as sampling stores them: features under the serving spec, no prompt."""
    featurizer = Featurizer(SPEC, embedder)
    store = SqliteOutcomes(str(ledger))

    async def write() -> None:
        for i, row in enumerate(rows(n, seed=23)):
            features = encode(featurizer.one(str(row["prompt"])), SPEC)
            cheap = 1.0 if row["small"] else 0.0
            outcome = Outcome(
                request_id=f"r{i}", source="judge", ts=time.time(), route="auto", served="cheap",
                cheap_score=cheap, features=features,
            )  # fmt: skip
            await store.save(outcome)
        await store.aclose()

    asyncio.run(write())


def config_file(folder: Path, router: Path, cheap: str, strong: str) -> Path:
    path = folder / "hybridgate.toml"
    path.write_text(
        f"""
[ledger]
path = "{folder / "gw.db"}"
flush_interval_s = 0.05
[router]
reload_interval_s = 0.2
retrain_min_outcomes = 50
[backends.cheap]
type = "openai_compat"
base_url = "{cheap}"
model = "gpt-4o-mini"
provider = "openai"
[backends.strong]
type = "openai_compat"
base_url = "{strong}"
model = "gpt-4o"
provider = "openai"
[routes.auto]
try = ["cheap", "strong"]
router = "learned"
router_file = "{router}"
[routes.auto.outcomes]
sample_percent = 100
""",
        encoding="utf-8",
    )
    return path


def retrain_cli(config: Path, *args: str) -> list[dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hybridgate",
            "router",
            "retrain",
            "-c",
            str(config),
            "--json",
            "--folds",
            "2",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=config.parent,
    )
    assert done.returncode == 0, done.stderr
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


def promotions(ledger: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(ledger) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM router_promotions ORDER BY ts")]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Rig:
    url: str
    config: Path
    router: Path
    ledger: Path

    def serving_sha(self) -> str:
        sha256: str = httpx.get(f"{self.url}/healthz").json()["router_files"]["auto"]["sha256"]
        return sha256


@pytest.fixture
def gateway(tmp_path: Path, embedder: WordLlamaEmbedder, request: pytest.FixtureRequest) -> Iterator[Rig]:
    router = train_serving(tmp_path, embedder, inverted=request.param)
    judge = Reply(content="GOOD\nsame answer")
    with run_openai_standin() as cheap, run_openai_standin(unscripted=lambda: judge) as strong:
        config = config_file(tmp_path, router, cheap.base_url, strong.base_url)
        with serve_in_thread(create_app(load_config(config), env={})) as url:
            yield Rig(url, config, router, tmp_path / "gw.db")


@pytest.mark.parametrize("gateway", [True], indirect=True)
def test_a_clearly_better_candidate_is_promoted_and_served(gateway: Rig, embedder: WordLlamaEmbedder) -> None:
    before = gateway.serving_sha()
    assert before == sha(gateway.router)
    # One live request on the learned route: sampling stores its features (decodable), no prompt.
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0) as client:
        client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "say hello to Ada"}],
            extra_headers={"x-request-id": "live-1"},
        )  # fmt: skip
    live = wait_for_outcome(gateway.ledger, "live-1")
    assert live["prompt_text"] is None and live["router_sha256"] == before
    assert decode_many([live["features"]], SPEC)[1] == [0]
    write_outcomes(gateway.ledger, embedder)

    (report,) = retrain_cli(gateway.config)

    assert report["promoted"], report
    assert report["ci_low"] > 0 and report["improvement"] > 0
    assert report["candidate_value"] < report["serving_value"]
    assert report["rows_held_out"] >= 10 and report["rows_train"] > report["rows_held_out"]
    assert sha(gateway.router) == report["candidate_sha256"] != before
    assert sha(gateway.router.with_name("router.json.previous")) == before
    deadline = time.monotonic() + 10
    while gateway.serving_sha() != report["candidate_sha256"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gateway.serving_sha() == report["candidate_sha256"]  # the running gateway reloaded it
    (recorded,) = promotions(gateway.ledger)
    assert recorded["promoted"] == 1 and recorded["ci_low"] == pytest.approx(report["ci_low"])


@pytest.mark.parametrize("gateway", [False], indirect=True)
def test_a_candidate_that_is_not_clearly_better_is_refused(gateway: Rig, embedder: WordLlamaEmbedder) -> None:
    before = sha(gateway.router)
    (early,) = retrain_cli(gateway.config)  # no outcomes yet
    assert not early["promoted"] and "too few graded outcomes" in early["reason"]
    write_outcomes(gateway.ledger, embedder)

    (report,) = retrain_cli(gateway.config)

    assert not report["promoted"], report
    assert report["ci_low"] <= 0 and "not better" in report["reason"]
    assert sha(gateway.router) == before and gateway.serving_sha() == before
    assert not gateway.router.with_name("router.json.previous").exists()
    assert [p["promoted"] for p in promotions(gateway.ledger)] == [0, 0]


def wait_for_outcome(ledger: Path, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with sqlite3.connect(ledger) as conn:
            conn.row_factory = sqlite3.Row
            try:
                found = conn.execute("SELECT * FROM outcomes WHERE request_id = ?", (request_id,)).fetchall()
            except sqlite3.OperationalError:
                found = []
        if found:
            return dict(found[0])
        time.sleep(0.05)
    raise AssertionError(f"no outcome for {request_id}")


def test_repeats_of_a_prompt_land_on_the_same_side_of_the_split(embedder: WordLlamaEmbedder) -> None:
    """Production repeats questions: a held-out row's duplicate in the training rows would let the
    candidate be compared on what it memorised."""
    from hybridgate.training.retrain import labelled

    featurizer = Featurizer(SPEC, embedder)
    prompts = [f"question number {i} about pencils" for i in range(40)]
    outcomes = [
        Outcome(
            request_id=f"r{i}-{copy}", source="judge", ts=0.0, route="auto", served="cheap",
            cheap_score=1.0, features=encode(featurizer.one(prompt), SPEC),
        )
        for i, prompt in enumerate(prompts)
        for copy in range(3)
    ]  # fmt: skip
    data = labelled(outcomes, featurizer)
    sides: dict[str, set[bool]] = {}
    for request_id, key in zip(data.request_ids, data.prompts, strict=True):
        sides.setdefault(request_id.split("-")[0], set()).add(held_out(key, 30))
    assert all(len(side) == 1 for side in sides.values())
    assert {True, False} == set().union(*sides.values())  # both sides are used


def test_history_lists_verdicts_and_schedule_needs_an_interval(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from hybridgate.cli import app
    from hybridgate.ledger.outcomes import Promotion

    config = config_file(tmp_path, tmp_path / "router.json", "http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1")
    refused = CliRunner().invoke(app, ["router", "retrain", "-c", str(config), "--schedule"])
    assert refused.exit_code == 2 and "retrain_every_s" in refused.output

    async def record() -> None:
        store = SqliteOutcomes(str(tmp_path / "gw.db"))
        await store.record_promotion(
            Promotion(
                ts=1.0, route="auto", promoted=True, reason="better", serving_sha256="a",
                candidate_sha256="b", rows_train=70, rows_held_out=30, metric="strong_share_at_95",
                serving_value=0.6, candidate_value=0.4, improvement=0.2, ci_low=0.1, ci_high=0.3,
            )
        )  # fmt: skip
        await store.aclose()

    asyncio.run(record())
    listed = CliRunner().invoke(app, ["router", "retrain", "-c", str(config), "--history", "--json"])
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.output)
    assert row["promoted"] is True and row["candidate_sha256"] == "b" and row["ci_low"] == 0.1
