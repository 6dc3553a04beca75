"""Cost-quality metrics and threshold calibration: pure numbers, no models."""

from __future__ import annotations

import numpy as np
import pytest

from hybridgate.training.calibration import Target, achieved, calibrate, threshold_for
from hybridgate.training.quality import curve, random_share_for_quality, summary

# 10 rows: the strong tier helps on rows 0-3, hurts on row 9, ties elsewhere.
WEAK = np.array([0, 0, 0, 0, 1, 1, 1, 1, 0, 1], dtype=float)
STRONG = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 0], dtype=float)
PERFECT = STRONG - WEAK


def test_perfect_router_reaches_strong_quality_with_few_calls() -> None:
    c = curve(PERFECT, WEAK, STRONG)
    assert c.weak_quality == 0.5 and c.strong_quality == 0.8
    # 95% of 0.8 = 0.76: the 3rd helpful row (quality 0.8 after 3 strong calls) crosses it
    assert c.share_for_quality(0.95) == pytest.approx(0.26)
    assert c.share_for_pgr(0.5) == pytest.approx(0.15)
    assert summary(c)["strong_share_at_95"] == pytest.approx(0.26)


def test_constant_router_is_the_random_router() -> None:
    c = curve(np.zeros(10), WEAK, STRONG)
    assert c.share_for_quality(0.95) == pytest.approx(random_share_for_quality(0.5, 0.8))
    assert c.apgr() == pytest.approx(0.5)  # the straight line's area


def test_no_gap_means_no_pgr() -> None:
    c = curve(np.zeros(3), np.ones(3), np.ones(3))
    assert c.share_for_quality(0.95) == 0.0
    assert c.apgr() is None and c.share_for_pgr(0.5) is None


def test_costs_follow_the_curve() -> None:
    c = curve(PERFECT, WEAK, STRONG, np.full(10, 1.0), np.full(10, 10.0))
    out = summary(c)
    assert out["cost_usd_all_strong"] == pytest.approx(100.0)
    assert out["cost_usd_at_95"] == pytest.approx(10 + 0.26 * 10 * 9)


def test_quality_threshold_picks_fewest_strong_calls() -> None:
    t = threshold_for(Target("quality", 0.95), PERFECT, WEAK, STRONG)
    share, ratio = achieved(t, PERFECT, WEAK, STRONG)
    # Rows 0-3 tie at the top: a threshold cannot take 3 of them, so it takes all 4.
    assert ratio >= 0.95 and share == pytest.approx(0.4)
    spread = PERFECT + np.linspace(0.01, 0, 10)  # break the ties: exactly the 3 needed
    t = threshold_for(Target("quality", 0.95), spread, WEAK, STRONG)
    assert achieved(t, spread, WEAK, STRONG)[0] == pytest.approx(0.3)


def test_share_target_never_exceeds_the_share() -> None:
    scores = np.linspace(1, 0, 10)
    t = threshold_for(Target("strong_share", 0.25), scores, WEAK, STRONG)
    assert achieved(t, scores, WEAK, STRONG)[0] == pytest.approx(0.2)
    # ties are not split: 0.5 of rows tied at the top cannot give a 0.25 share
    tied = np.array([1.0] * 5 + [0.0] * 5)
    assert (
        achieved(threshold_for(Target("strong_share", 0.25), tied, WEAK, STRONG), tied, WEAK, STRONG)[0] == 0
    )


def test_calibration_reports_a_bootstrap_interval() -> None:
    rng = np.random.default_rng(3)
    n = 2000
    hard = rng.random(n) < 0.4
    weak = (rng.random(n) < np.where(hard, 0.2, 0.95)).astype(float)
    strong = (rng.random(n) < np.where(hard, 0.9, 0.97)).astype(float)
    scores = hard + rng.normal(0, 0.3, n)
    result = calibrate(Target("quality", 0.95), scores, weak, strong, bootstrap=200)
    assert result.quality_ratio >= 0.95
    low, high = result.quality_ratio_ci
    assert low < result.quality_ratio < high
    assert result.threshold_ci[0] <= result.threshold <= result.threshold_ci[1]
    cautious = calibrate(Target("quality", 0.95), scores, weak, strong, bootstrap=200, confidence=0.9)
    assert cautious.threshold < result.threshold and cautious.strong_share > result.strong_share
    assert result.to_json()["ci95"]["strong_share"][0] <= result.strong_share


def test_target_must_be_a_fraction() -> None:
    with pytest.raises(ValueError, match="fraction"):
        Target("quality", 95)
