"""Choose the router's threshold for an explicit target, on held-out scores, with a bootstrap CI.

Targets: ``quality`` ("keep >= Q of the strong tier's quality", e.g. 0.95) or ``strong_share``
("send <= X of requests to the strong tier"). The threshold is the one that meets the target on
the held-out rows; the same choice is repeated on ``bootstrap`` resamples of those rows, which
gives a confidence interval for the threshold and for what it achieves (strong share, quality
ratio). ``confidence`` > 0.5 picks a more cautious threshold from the resampled ones: the target
is then met on that fraction of resamples, at the price of more strong calls (quality targets)
or less quality (share targets).

A request goes to the strong tier when its score (expected quality gain) is >= the threshold.
Offline only: used by training; the gateway just compares a score with the stored number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]
TargetKind = Literal["quality", "strong_share"]


@dataclass(frozen=True)
class Target:
    kind: TargetKind
    value: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.value <= 1.0:
            raise ValueError(f"a {self.kind} target is a fraction in [0, 1], not {self.value}")

    def describe(self) -> str:
        if self.kind == "quality":
            return f"keep >= {self.value:.0%} of the strong tier's quality"
        return f"send <= {self.value:.0%} of requests to the strong tier"


@dataclass(frozen=True)
class Calibration:
    target: Target
    threshold: float
    strong_share: float  # on the held-out rows, at ``threshold``
    quality_ratio: float  # served quality / strong tier's quality, same rows
    threshold_ci: tuple[float, float]
    strong_share_ci: tuple[float, float]
    quality_ratio_ci: tuple[float, float]
    held_out_rows: int
    bootstrap: int
    confidence: float

    def to_json(self) -> dict[str, Any]:
        return {
            "target": {"kind": self.target.kind, "value": self.target.value},
            "threshold": self.threshold,
            "strong_share": round(self.strong_share, 4),
            "quality_ratio": round(self.quality_ratio, 4),
            "ci95": {
                "threshold": [round(x, 6) for x in self.threshold_ci],
                "strong_share": [round(x, 4) for x in self.strong_share_ci],
                "quality_ratio": [round(x, 4) for x in self.quality_ratio_ci],
            },
            "held_out_rows": self.held_out_rows,
            "bootstrap": self.bootstrap,
            "confidence": self.confidence,
        }


def threshold_for(target: Target, scores: Floats, weak: Floats, strong: Floats) -> float:
    """The threshold meeting ``target`` on these rows (fewest strong calls for a quality target)."""
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    n = len(scores)
    if target.kind == "strong_share":
        k = int(np.floor(target.value * n + 1e-9))
    else:
        quality = (weak.sum() + np.concatenate([[0.0], np.cumsum((strong - weak)[order])])) / n
        goal = target.value * strong.mean() - 1e-12
        k = int(np.argmax(quality >= goal)) if (quality >= goal).any() else n
    # Ties cannot be split by a threshold: a quality target takes the whole run of ties,
    # a share target stops before it.
    if target.kind == "quality":
        while 0 < k < n and ranked[k] == ranked[k - 1]:
            k += 1
    else:
        while 0 < k < n and ranked[k] == ranked[k - 1]:
            k -= 1
    if k == 0:
        return float(np.nextafter(ranked[0], np.inf))
    if k == n:
        return float(ranked[-1])
    return float((ranked[k - 1] + ranked[k]) / 2)


def achieved(threshold: float, scores: Floats, weak: Floats, strong: Floats) -> tuple[float, float]:
    """(strong share, quality ratio) when routing these rows at ``threshold``."""
    to_strong = scores >= threshold
    served = np.where(to_strong, strong, weak).mean()
    best = strong.mean()
    return float(to_strong.mean()), float(served / best) if best > 0 else 1.0


def calibrate(
    target: Target,
    scores: Floats,
    weak: Floats,
    strong: Floats,
    *,
    bootstrap: int = 500,
    confidence: float = 0.5,
    seed: int = 0,
) -> Calibration:
    if len(scores) == 0:
        raise ValueError("no held-out rows to calibrate on")
    rng = np.random.default_rng(seed)
    samples = [rng.integers(0, len(scores), len(scores)) for _ in range(bootstrap)]
    thresholds = np.array([threshold_for(target, scores[i], weak[i], strong[i]) for i in samples])
    if bootstrap and confidence != 0.5:
        # Cautious: a lower threshold sends more to the strong tier (quality targets);
        # a higher one sends less (share targets).
        q = 1 - confidence if target.kind == "quality" else confidence
        threshold = float(np.quantile(thresholds, q))
    else:
        threshold = threshold_for(target, scores, weak, strong)
    share, ratio = achieved(threshold, scores, weak, strong)
    results = np.array([achieved(threshold, scores[i], weak[i], strong[i]) for i in samples]).reshape(-1, 2)
    return Calibration(
        target=target,
        threshold=threshold,
        strong_share=share,
        quality_ratio=ratio,
        threshold_ci=_ci(thresholds, threshold),
        strong_share_ci=_ci(results[:, 0], share),
        quality_ratio_ci=_ci(results[:, 1], ratio),
        held_out_rows=len(scores),
        bootstrap=bootstrap,
        confidence=confidence,
    )


def _ci(values: Floats, fallback: float) -> tuple[float, float]:
    if len(values) == 0:
        return fallback, fallback
    low, high = np.quantile(values, [0.025, 0.975])
    return float(low), float(high)
