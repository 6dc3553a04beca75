"""Cost-quality metrics for a router, computed from scores and known outcomes (offline only).

A router ranks requests by a score (higher: the strong tier helps more). Sending the top ``k`` of
``n`` to the strong tier and the rest to the weak one gives a point on the cost-quality curve:
``share = k / n`` and ``quality`` = mean outcome of the answers actually served. The metrics are
the ones RouteLLM reports (arXiv 2406.18665):

- strong share at 95%: the smallest share whose quality reaches 95% of the strong tier's;
- PGR (performance gap recovered) = (quality - weak) / (strong - weak); APGR is its area over
  share in [0, 1]; CPT(x) is the smallest share whose PGR reaches x.

Equal scores carry no ranking information, so the curve is linear across a run of ties (the
expected curve under random tie-breaking): a constant router is exactly the random router.
Pure numpy; used by training, ``router eval`` and the benchmark, never on the request path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]


@dataclass(frozen=True)
class Curve:
    """Quality (mean outcome) and cost as a function of the share sent to the strong tier."""

    share: Floats  # breakpoints in [0, 1], ascending; quality is linear between them
    quality: Floats
    cost: Floats | None
    weak_quality: float
    strong_quality: float

    def share_for_quality(self, ratio: float) -> float:
        """Smallest strong share whose quality reaches ``ratio`` x the strong tier's."""
        return _first_crossing(self.share, self.quality, ratio * self.strong_quality)

    def share_for_pgr(self, pgr: float) -> float | None:
        gap = self.strong_quality - self.weak_quality
        if gap <= 0:
            return None  # the strong tier is no better: there is no gap to recover
        return _first_crossing(self.share, self.quality, self.weak_quality + pgr * gap)

    def apgr(self) -> float | None:
        gap = self.strong_quality - self.weak_quality
        if gap <= 0:
            return None
        pgr = (self.quality - self.weak_quality) / gap
        return float(np.sum((pgr[1:] + pgr[:-1]) / 2 * np.diff(self.share)))

    def cost_at(self, share: float) -> float | None:
        if self.cost is None:
            return None
        return float(np.interp(share, self.share, self.cost))


def _first_crossing(x: Floats, y: Floats, level: float) -> float:
    """The smallest x at which the piecewise-linear y reaches ``level`` (1.0 when it never does)."""
    above = np.nonzero(y >= level - 1e-12)[0]
    if len(above) == 0:
        return 1.0
    i = int(above[0])
    if i == 0:
        return float(x[0])
    # Interpolate inside the segment that crosses: shares are fractions, not just breakpoints.
    t = (level - y[i - 1]) / (y[i] - y[i - 1])
    return float(x[i - 1] + t * (x[i] - x[i - 1]))


def curve(
    scores: Floats,
    weak: Floats,
    strong: Floats,
    weak_cost: Floats | None = None,
    strong_cost: Floats | None = None,
) -> Curve:
    """The cost-quality curve of routing by ``scores`` (higher -> strong tier first)."""
    n = len(scores)
    if n == 0:
        raise ValueError("no rows to evaluate")
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    # Breakpoints at the end of every run of equal scores.
    ends = np.nonzero(np.diff(sorted_scores) != 0)[0] + 1
    ends = np.concatenate([[0], ends, [n]])
    gain = np.concatenate([[0.0], np.cumsum((strong - weak)[order])])
    quality = (weak.sum() + gain[ends]) / n
    cost = None
    if weak_cost is not None and strong_cost is not None:
        extra = np.concatenate([[0.0], np.cumsum((strong_cost - weak_cost)[order])])
        cost = weak_cost.sum() + extra[ends]
    return Curve(ends / n, quality, cost, float(weak.mean()), float(strong.mean()))


def summary(c: Curve) -> dict[str, float | None]:
    """The numbers ``router eval`` and the benchmark report for one curve."""
    at95 = c.share_for_quality(0.95)
    out: dict[str, float | None] = {
        "strong_share_at_95": round(at95, 4),
        "apgr": _round(c.apgr()),
        "cpt50": _round(c.share_for_pgr(0.5)),
        "cpt80": _round(c.share_for_pgr(0.8)),
        "weak_quality": round(c.weak_quality, 4),
        "strong_quality": round(c.strong_quality, 4),
    }
    if c.cost is not None:
        out["cost_usd_at_95"] = _round(c.cost_at(at95), 6)
        out["cost_usd_all_strong"] = _round(c.cost_at(1.0), 6)
    return out


def random_share_for_quality(weak_quality: float, strong_quality: float, ratio: float = 0.95) -> float:
    """What a random router needs: its curve is the straight line from weak to strong."""
    gap = strong_quality - weak_quality
    if gap <= 0:
        return 0.0
    return float(min(1.0, max(0.0, (ratio * strong_quality - weak_quality) / gap)))


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)
