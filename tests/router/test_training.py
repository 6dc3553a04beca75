"""Training, calibration on held-out data, the router file round trip and scoring requests.

All data is synthetic (tests/router/synthetic.py); the WordLlama embedding is the real one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hybridgate.embedder import WordLlamaEmbedder
from hybridgate.router.artifact import RouterArtifact
from hybridgate.router.learned import LearnedRouter
from hybridgate.training.calibration import achieved
from hybridgate.training.dataset import load_outcomes
from hybridgate.training.evaluation import decision_latency_ms, evaluate
from tests.router.synthetic import rows, write_csv


@pytest.fixture(scope="module")
def router(artifact: RouterArtifact, embedder: WordLlamaEmbedder) -> LearnedRouter:
    return LearnedRouter(artifact, embedder, source="test")


def test_router_file_records_how_it_was_made(artifact: RouterArtifact, train_file: Path) -> None:
    assert artifact.training["rows"] == 600
    assert (artifact.training["weak"], artifact.training["strong"]) == ("small", "big")  # by cost columns
    calibration = artifact.calibration
    assert calibration["target"] == {"kind": "quality", "value": 0.95}
    low, high = calibration["ci95"]["quality_ratio"]
    assert low <= calibration["quality_ratio"] <= high
    held_out = artifact.metrics["held_out"]
    # The hard prompts are learnable: far fewer strong calls than a random router's ~0.5.
    assert held_out["strong_share_at_95"] < 0.5
    assert held_out["cost_usd_at_95"] < held_out["cost_usd_all_strong"]


def test_hard_prompts_score_higher(router: LearnedRouter) -> None:
    easy = router.score("say hello to Ada")
    hard = router.score(
        "Bob buys 12 boxes of 30 pencils and gives away 7. How many pencils are left after 3 days?"
    )
    assert hard.gain > easy.gain
    assert hard.use_strong and not easy.use_strong
    assert hard.top and all(isinstance(t, str) for t in hard.top)


def test_calibrated_threshold_meets_target_on_new_data(router: LearnedRouter, tmp_path: Path) -> None:
    fresh = load_outcomes(write_csv(tmp_path / "fresh.csv", rows(1500, seed=99)))
    scores = router.predict(fresh.prompts).gain
    share, ratio = achieved(router.threshold, scores, fresh.weak, fresh.strong)
    assert ratio >= 0.95 - 0.015  # sampling noise on 1,500 fresh rows
    assert share < 0.6  # and it did not get there by sending everything to the strong tier


def test_round_trip_gives_identical_scores(
    artifact: RouterArtifact, router_file: Path, embedder: WordLlamaEmbedder
) -> None:
    loaded = LearnedRouter.load(router_file, embedder)
    direct = LearnedRouter(artifact, embedder)
    prompts = ["greet Eve politely", "A train travels 40 km at 80 km/h and then 10 km at 20 km/h."]
    # float32 storage: equal to well below any threshold's resolution
    np.testing.assert_allclose(loaded.predict(prompts).gain, direct.predict(prompts).gain, atol=1e-5)
    assert loaded.threshold == pytest.approx(artifact.threshold)
    assert loaded.artifact.training == artifact.training


def test_threshold_override(artifact: RouterArtifact, embedder: WordLlamaEmbedder) -> None:
    always_strong = LearnedRouter(artifact, embedder, threshold=-1.0)
    assert always_strong.score("say hello to Ada").use_strong


def test_single_request_features_equal_batch_features(router: LearnedRouter) -> None:
    prompts = ["say hello to Ada", "If Gita saves 10% of 300 dollars each week for 4 weeks?", "x" * 9000]
    batch = router.featurizer.many(prompts)
    for i, text in enumerate(prompts):
        one = router.featurizer.one(text)
        np.testing.assert_allclose(one.dense[0], batch.dense[i], rtol=1e-6)
        row = batch.tokens.take(np.array([i]))
        assert one.tokens.indices.tolist() == row.indices.tolist()


def test_evaluate_reports_the_named_fields(router: LearnedRouter, tmp_path: Path) -> None:
    data = load_outcomes(write_csv(tmp_path / "eval.csv", rows(200, seed=5)))
    report = evaluate(router, data, latency_rows=30)
    for key in ("strong_share_at_95", "apgr", "cpt50", "cpt80", "decision_p50_ms", "decision_p99_ms"):
        assert key in report
    for key in ("strong_share_at_95", "cpt50", "cpt80"):
        assert 0.0 <= report[key] <= 1.0
    assert report["strong_share_at_95"] < report["random_strong_share_at_95"]
    assert report["cost_usd_at_95"] > 0


def test_latency_is_measured_per_request(router: LearnedRouter) -> None:
    # Sanity only (no timing assertions on a shared machine): numbers exist and are ordered.
    latency = decision_latency_ms(router, ["say hello to Ada", "a" * 20000, "12 + 30 = ?"] * 10, limit=30)
    assert 0 < latency["decision_p50_ms"] <= latency["decision_p99_ms"]
