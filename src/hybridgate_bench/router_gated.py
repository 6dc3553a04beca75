"""A router-gated cascade, offline: requests the prompt router scores highest skip the cheap call.

The plain cascade (``gsm8k_cascade``) pays the cheap call on every request and both calls on the
escalated ones. The gated cascade first ranks requests by a prompt-only router's score: the top
``skip_share`` go straight to the strong tier (they pay only the strong call and wait for no cheap
answer); the rest run the cascade (cheap first, escalate by the answer-aware router's score).
``skip_share = 0`` is the plain cascade.

For a given ``skip_share`` the escalation threshold moves along the cascade's curve exactly as for
any router (the metric's usual oracle threshold on the evaluated rows); ``skip_share`` itself is
chosen on the development split (``choose_skip_share``), never on the reported rows.
Offline only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from hybridgate.training.quality import Curve, curve

Floats = NDArray[np.float64]
SKIP_SHARES = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)


def gated_curve(
    skip: Floats,
    escalate: Floats,
    weak: Floats,
    strong: Floats,
    weak_cost: Floats,
    strong_cost: Floats,
    skip_share: float,
) -> Curve:
    """Quality and cost against the share of requests that get the strong answer.

    ``strong_cost`` is the strong call alone; an escalated request pays ``weak_cost + strong_cost``,
    a skipped one ``strong_cost``, a cheap-served one ``weak_cost``."""
    n = len(skip)
    k = round(skip_share * n)
    order = np.argsort(-skip, kind="stable")
    skipped, rest = order[:k], order[k:]
    if len(rest) == 0:
        share = np.array([1.0])
        return Curve(
            share,
            np.array([strong.mean()]),
            np.array([strong_cost.sum()]),
            float(weak.mean()),
            float(strong.mean()),
        )
    sub = curve(
        escalate[rest], weak[rest], strong[rest], weak_cost[rest], weak_cost[rest] + strong_cost[rest]
    )
    assert sub.cost is not None
    share = (k + sub.share * len(rest)) / n
    quality = (strong[skipped].sum() + sub.quality * len(rest)) / n
    cost = strong_cost[skipped].sum() + sub.cost
    return Curve(share, quality, cost, float(weak.mean()), float(strong.mean()))


def at95(c: Curve, all_strong: float) -> dict[str, float]:
    share = c.share_for_quality(0.95)
    cost = c.cost_at(share)
    assert cost is not None
    return {"strong_share_at_95": share, "cost_share_of_all_strong_at_95": cost / all_strong}


def gated_at95(
    skip: Floats,
    escalate: Floats,
    weak: Floats,
    strong: Floats,
    weak_cost: Floats,
    strong_cost: Floats,
    skip_share: float,
) -> dict[str, float]:
    c = gated_curve(skip, escalate, weak, strong, weak_cost, strong_cost, skip_share)
    out = at95(c, float(strong_cost.sum()))
    k = round(skip_share * len(skip)) / len(skip)
    out["skipped_share"] = k
    # Requests that wait for a whole cheap answer and then the strong one.
    out["escalated_share"] = max(0.0, out["strong_share_at_95"] - k)
    return out


def choose_skip_share(
    skip: Floats, escalate: Floats, weak: Floats, strong: Floats, weak_cost: Floats, strong_cost: Floats
) -> tuple[float, list[dict[str, float]]]:
    """The skip share with the lowest cost at 95% on these (development) rows, and every one tried."""
    tried = []
    for q in SKIP_SHARES:
        result = gated_at95(skip, escalate, weak, strong, weak_cost, strong_cost, q)
        tried.append({"skip_share": q, **{key: round(v, 4) for key, v in result.items()}})
    best = min(tried, key=lambda t: (t["cost_share_of_all_strong_at_95"], t["skip_share"]))
    return best["skip_share"], tried


def gated_bootstrap(
    skip: Floats,
    escalate: Floats,
    weak: Floats,
    strong: Floats,
    weak_cost: Floats,
    strong_cost: Floats,
    skip_share: float,
    resamples: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """Cost share at 95%: gated minus plain cascade, on the same resampled rows (negative: cheaper)."""
    rng = np.random.default_rng(seed)

    def diff(i: NDArray[np.int64]) -> float:
        args = (skip[i], escalate[i], weak[i], strong[i], weak_cost[i], strong_cost[i])
        gated = gated_at95(*args, skip_share)["cost_share_of_all_strong_at_95"]
        plain = gated_at95(*args, 0.0)["cost_share_of_all_strong_at_95"]
        return gated - plain

    diffs = [diff(rng.integers(0, len(skip), len(skip))) for _ in range(resamples)]
    low, high = np.quantile(diffs, [0.025, 0.975])
    return {
        "difference": round(diff(np.arange(len(skip))), 4),
        "ci95": [round(float(low), 4), round(float(high), 4)],
        "significant": bool(high < 0 or low > 0),
        "resamples": resamples,
    }
