"""Metrics and reference routers for ``hybridgate bench router``, all measured, none constant.

- ``routellm_summary``: RouteLLM's own way (``routellm/evals/benchmarks.py`` and ``evaluate.py``
  at 0b64fdaf): thresholds at the 11 edges of ``pd.qcut(scores, 10)`` (score deciles, linear
  interpolation), a request goes to the strong model when its score is ``>=`` the threshold
  (``>`` for the last edge, so the last point sends none), the points sorted by strong share and
  joined by straight lines; CPT(x) = ``np.interp(weak + x (strong - weak), accuracy, share)``,
  APGR = (trapezoid area under accuracy - weak's) / (strong's - weak's). The same ``np.interp``
  gives the share at 95% of the strong model's quality.
- ``random_scores_summary``: a random router measured on the same rows (uniform scores, several
  seeds), both full-resolution and RouteLLM-style; RouteLLM averages the random router's curve over
  10 draws before computing its metrics, and so do we.
- ``paired_bootstrap``: the difference in strong share at 95% between two routers' scores on
  the same rows, with a 95% interval from resampling rows.

Offline only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from hybridgate.training.quality import curve, summary

Floats = NDArray[np.float64]
DECILES = 10


def routellm_points(
    scores: Floats, weak: Floats, strong: Floats, num_results: int = DECILES
) -> tuple[Floats, Floats]:
    """(strong share, quality) at RouteLLM's threshold points, sorted by share."""
    edges = np.quantile(scores, np.linspace(0.0, 1.0, num_results + 1))
    shares, quality = [], []
    for i, threshold in enumerate(edges):
        selection = scores >= threshold if i != len(edges) - 1 else scores > threshold
        shares.append(float(selection.mean()))
        quality.append(float(np.where(selection, strong, weak).mean()))
    order = np.argsort(shares, kind="stable")
    return np.asarray(shares)[order], np.asarray(quality)[order]


def routellm_metrics(
    share: Floats, quality: Floats, weak_quality: float, strong_quality: float
) -> dict[str, float]:
    """CPT(20/50/80%), share at 95% quality and APGR from RouteLLM's points, as RouteLLM computes them."""
    gap = strong_quality - weak_quality
    out = {
        f"cpt{int(p * 100)}": round(float(np.interp(weak_quality + p * gap, quality, share)), 4)
        for p in (0.2, 0.5, 0.8)
    }
    out["strong_share_at_95"] = round(float(np.interp(0.95 * strong_quality, quality, share)), 4)
    width = float(share[-1] - share[0])
    auc = float(np.sum((quality[1:] + quality[:-1]) / 2 * np.diff(share)))  # np.trapz
    out["apgr"] = round((auc - weak_quality * width) / (gap * width), 4) if gap > 0 and width > 0 else 0.0
    return out


def routellm_summary(scores: Floats, weak: Floats, strong: Floats) -> dict[str, float]:
    share, quality = routellm_points(scores, weak, strong)
    return routellm_metrics(share, quality, float(weak.mean()), float(strong.mean()))


def full_summary(scores: Floats, weak: Floats, strong: Floats) -> dict[str, Any]:
    """Every distinct score is a threshold; ties are linear (``quality.curve``)."""
    s = summary(curve(scores, weak, strong))
    return {k: s[k] for k in ("strong_share_at_95", "apgr", "cpt50", "cpt80")}


def random_scores_summary(weak: Floats, strong: Floats, draws: int = 10, seed: int = 0) -> dict[str, Any]:
    """A random router on these rows: uniform scores, ``draws`` seeds."""
    rng = np.random.default_rng(seed)
    full, points = [], []
    for _ in range(draws):
        scores = rng.random(len(weak))
        full.append(full_summary(scores, weak, strong))
        points.append(routellm_points(scores, weak, strong))
    share = np.mean([p[0] for p in points], axis=0)
    quality = np.mean([p[1] for p in points], axis=0)
    report: dict[str, Any] = {
        key: round(float(np.mean([f[key] for f in full if f[key] is not None])), 4) for key in full[0]
    }
    report["strong_share_at_95_draws"] = [f["strong_share_at_95"] for f in full]
    report["routellm"] = routellm_metrics(share, quality, float(weak.mean()), float(strong.mean()))
    report["draws"] = draws
    return report


def paired_bootstrap(
    a: Floats, b: Floats, weak: Floats, strong: Floats, resamples: int = 200, seed: int = 0
) -> dict[str, Any]:
    """Strong share at 95%: router a minus router b, on the same resampled rows (negative: a needs fewer)."""
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(resamples):
        i = rng.integers(0, len(a), len(a))
        da = curve(a[i], weak[i], strong[i]).share_for_quality(0.95)
        db = curve(b[i], weak[i], strong[i]).share_for_quality(0.95)
        diffs.append(da - db)
    low, high = np.quantile(diffs, [0.025, 0.975])
    point = curve(a, weak, strong).share_for_quality(0.95) - curve(b, weak, strong).share_for_quality(0.95)
    return {
        "difference": round(float(point), 4),
        "ci95": [round(float(low), 4), round(float(high), 4)],
        "significant": bool(high < 0 or low > 0),
        "resamples": resamples,
    }
