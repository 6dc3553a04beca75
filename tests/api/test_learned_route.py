"""A route with ``router = "learned"``: the gateway scores each request with a trained router file.

Stand-ins: ``cheap`` and ``strong`` are OpenAI-compatible stand-in servers (tests/standins/), not
real providers. The router file is trained here on synthetic outcome data (tests/router/
synthetic.py): arithmetic word problems need the strong tier, chit-chat does not. The gateway,
the WordLlama embedding, httpx and the openai SDK are real.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from hybridgate.app import create_app
from hybridgate.config import GatewayConfig
from hybridgate.embedder import WordLlamaEmbedder
from hybridgate.gateway import Gateway
from hybridgate.router.features import FeatureSpec, Featurizer
from hybridgate.training.calibration import Target
from hybridgate.training.dataset import load_outcomes
from hybridgate.training.train import TrainingOptions, train_router
from tests.router.synthetic import rows, write_csv
from tests.servers import serve_in_thread
from tests.standins.openai_upstream import Fail, OpenAIStandIn, run_openai_standin

ENV = {"CHEAP_KEY": "sk-cheap", "STRONG_KEY": "sk-strong"}
EASY = "wish Hugo a happy birthday"
HARD = "Dana buys 14 boxes of 25 pencils and gives away 9. How many pencils are left after 6 days?"


@dataclass
class LearnedRig:
    url: str
    gateway: Gateway
    cheap: OpenAIStandIn
    strong: OpenAIStandIn

    def last_row(self) -> dict[str, Any]:
        self.gateway.ledger.flush()
        return self.gateway.ledger.recent(1)[0]


def train_file(folder: Path) -> Path:
    data = load_outcomes(write_csv(folder / "outcomes.csv", rows(400, seed=11)))
    featurizer = Featurizer(FeatureSpec(token_buckets=1 << 16), WordLlamaEmbedder())
    options = TrainingOptions(target=Target("quality", 0.95), bootstrap=100)
    path = folder / "router.json"
    train_router(data, featurizer, options, {"file": "outcomes.csv"}).save(path)
    return path


def config(cheap: str, strong: str, router_file: Path, ledger: Path) -> GatewayConfig:
    backend = {"type": "openai_compat", "model": "gpt-4o-mini", "provider": "openai", "timeout_s": 5}
    return GatewayConfig.model_validate(
        {
            "ledger": {"path": str(ledger), "flush_interval_s": 0.05},
            "backends": {
                "cheap": {**backend, "base_url": cheap, "api_key_env": "CHEAP_KEY"},
                "strong": {**backend, "base_url": strong, "api_key_env": "STRONG_KEY"},
            },
            "routes": {
                "auto": {
                    "try": ["cheap", "strong"],
                    "router": "learned",
                    "router_file": str(router_file),
                    # Between the two kinds' scores (~0.03 and ~0.65). The file's own threshold,
                    # calibrated for 95% quality, lets a few hard prompts use the cheap tier.
                    "threshold": 0.3,
                },
                "strong": {"try": ["strong"]},
            },
        }
    )


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LearnedRig]:
    folder = tmp_path_factory.mktemp("learned")
    router_file = train_file(folder)
    with (
        run_openai_standin(api_key="sk-cheap") as cheap,
        run_openai_standin(api_key="sk-strong") as strong,
    ):
        app = create_app(config(cheap.base_url, strong.base_url, router_file, folder / "gw.db"), env=ENV)
        with serve_in_thread(app) as url:
            yield LearnedRig(url, app.state.gateway, cheap, strong)


@pytest.fixture
def client(rig: LearnedRig) -> Iterator[openai.OpenAI]:
    rig.cheap.reset()
    rig.strong.reset()
    with openai.OpenAI(base_url=f"{rig.url}/v1", api_key="caller", max_retries=0) as sdk:
        yield sdk


def ask(client: openai.OpenAI, text: str) -> Any:
    return client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": text}]
    )


def test_easy_prompt_goes_to_the_cheap_tier_first(rig: LearnedRig, client: openai.OpenAI) -> None:
    raw = ask(client, EASY)
    assert raw.parse().choices[0].message.content == f"echo: {EASY}"
    assert raw.headers["x-hybridgate-rule"] == "learned"
    assert raw.headers["x-hybridgate-backend"] == "cheap"
    assert len(rig.cheap.requests) == 1 and not rig.strong.requests
    row = rig.last_row()
    assert row["rule"] == "learned" and row["attempts"] == ["cheap:ok"]
    assert row["reasons"][0] == "route by default"
    assert any("threshold=" in r and "cheap tier first" in r for r in row["reasons"])
    assert any(r.startswith("p_cheap_ok=") for r in row["reasons"])


def test_hard_prompt_goes_straight_to_the_strong_tier(rig: LearnedRig, client: openai.OpenAI) -> None:
    raw = ask(client, HARD)
    assert raw.headers["x-hybridgate-backend"] == "strong"
    assert not rig.cheap.requests and len(rig.strong.requests) == 1
    row = rig.last_row()
    assert row["rule"] == "learned" and row["attempts"] == ["strong:ok"]
    assert any("strong tier" in r and "threshold=0.300" in r for r in row["reasons"])
    assert any(r.startswith("feature ") for r in row["reasons"])  # the top features are recorded


def test_cheap_tier_failure_still_falls_back(rig: LearnedRig, client: openai.OpenAI) -> None:
    rig.cheap.script(Fail(status=503, type="server_error"))
    raw = ask(client, EASY)
    assert raw.headers["x-hybridgate-backend"] == "strong"
    assert rig.last_row()["attempts"] == ["cheap:error:server_error", "strong:ok"]


def test_other_routes_are_not_scored(rig: LearnedRig, client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="strong", messages=[{"role": "user", "content": EASY}]
    )
    assert raw.headers["x-hybridgate-rule"] == "explicit"
    assert rig.last_row()["attempts"] == ["strong:ok"]
